#!/bin/bash
# The compute-host drain tests against the real Nova lab (docs/compute-host.md).
#
#   tests/nova/run.sh [PYTEST ARGS]   build umm, start the lab once, run tests/nova, stop the lab
#                                     (test_keystone.py starts Keystone + Masakari for itself:
#                                     lab.sh start-keystone, a cached layer, ~15-40 s)
#   tests/nova/run.sh bench           print the drain time for 10 servers at N = 1, 2, 4
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/../.."
say() { printf '\n==> %s\n' "$*"; }

say "cargo build --bin umm"
cargo build -q --bin umm
UMM_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/umm"
export UMM_BIN
say "Nova lab (cached chroot in ${UMM_NOVA_CACHE:-/var/cache/umm-nova})"
trap 'tests/nova/lab.sh stop' EXIT
NOVA_LAB_ENV=$(tests/nova/lab.sh start 3)
export NOVA_LAB_ENV
if [[ ${1:-} == bench ]]; then
    shift
    set -- tests/nova/bench_drain.py -s "$@"
else
    set -- tests/nova "$@"
fi
say "pytest $*"
python3 -m pytest -p no:cacheprovider -v -ra "$@"
