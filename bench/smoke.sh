#!/bin/bash
# Every benchmark in bench/, briefly, so none of them rots: each must run to its
# report. The figures are NOT judged here (a few rounds on a busy CI machine say
# nothing; the targets are judged by the full runs of docs/benchmarks.md).
#
#   bench/smoke.sh          run by scripts/test.sh after the package is built
#
# Needs what the test command has by then: the static and the glibc build
# (scripts/build-release.sh), the package in target/debian (scripts/deb.sh),
# CONSUL_BIN or scripts/install-consul.sh, root, systemd-nspawn, qemu.
# bench/rebootmgr-vs-python needs the Python rebootmgr's source
# (PY_REBOOTMGR_SRC): it is run when that is set and reported as not run
# otherwise, since the test command cannot download it.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

log=$(mktemp -d "${TMPDIR:-/tmp}/umm-bench-smoke.XXXXXX")
trap 'rm -rf "$log"' EXIT
n=0
# smoke NAME PATTERN COMMAND...: COMMAND must exit 0 and print a line matching PATTERN.
smoke() {
    local name=$1 pattern=$2 t0 rc=0
    shift 2
    n=$((n + 1))
    t0=$(date +%s)
    "$@" >"$log/$n.out" 2>&1 || rc=$?
    if [ "$rc" != 0 ] || ! grep -Eq -- "$pattern" "$log/$n.out"; then
        echo "bench smoke: $name FAILED (exit $rc; wanted a line matching '$pattern'): $*" >&2
        tail -n 40 "$log/$n.out" >&2
        exit 1
    fi
    echo "bench smoke: $name ran to its report in $(($(date +%s) - t0)) s: $(grep -Em1 -- "$pattern" "$log/$n.out")"
}

smoke "bench/generator.sh" '^(PASS|FAIL)  ' \
    bench/generator.sh --rounds 20 --no-trigger
smoke "bench/init.py (fake root)" '^(PASS|FAIL)  added by umm-init' \
    python3 bench/init.py --no-build --rounds 20 --warmup 2
smoke "bench/init.py --pid1" '^(PASS|FAIL)  added by umm-init' \
    python3 bench/init.py --no-build --pid1 --rounds 3 --warmup 1
smoke "bench/init-vm.py" '^umm-init as PID 1, normal, files cached +[0-9.]+' \
    python3 bench/init-vm.py --rounds 1
smoke "bench/rebootmgr-rollout (its result is judged: every node rebooted, never more than 2 at once)" '^result: +OK' \
    python3 bench/rebootmgr-rollout --nodes 4 --max-parallel 2
if [ -n "${PY_REBOOTMGR_SRC:-}" ]; then
    smoke "bench/rebootmgr-vs-python" 'ratio Python / Rust' python3 bench/rebootmgr-vs-python --rounds 1
else
    echo "bench smoke: bench/rebootmgr-vs-python NOT RUN: it needs PY_REBOOTMGR_SRC (a checkout of the Python rebootmgr), which the test command cannot download"
fi
