#!/bin/bash
# The whole test suite, from a fresh clone on a fresh Debian 12 machine:
#   0. installs what the tests need (scripts/test-deps.sh)
#   1. cargo fmt --check, cargo clippy -D warnings
#   2. cargo test --workspace: unit tests, the generator's golden trees, systemd-analyze verify
#      of the units, the CLI on fake roots, rebootmgr against a real Consul cluster, grub and
#      upstart checks
#   3. the fleet suite (tests/fleet): real systemd boots in nspawn containers, a real
#      3-server Consul cluster across them, and the single-node umm scenarios 2-7
#   4. a short fuzz pass over every parser (fuzz/run.sh: AFL++ via cargo-afl)
#   4b. the Nova suite (tests/nova): the compute-host drain against a real Nova lab (chroot)
#   5. the Debian package: built (make deb), lintian-clean, a copy of dist/ plus the binaries
#   5b. every benchmark briefly (bench/smoke.sh): each runs to its report; figures not judged
#   6. the VM suite (tests/vm): real boots under qemu
# Nothing is skipped: a missing tool is installed, or the run fails.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { printf '\n=== %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

step "installing test dependencies"
scripts/test-deps.sh
export CONSUL_BIN=${CONSUL_BIN:-$(scripts/install-consul.sh 2>/dev/null || true)}

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy"
cargo clippy --all-targets --workspace -- -D warnings

step "cargo test --workspace"
cargo test --workspace

step "the generator's tests against the static release build (scripts/build-release.sh)"
static_bin=target/x86_64-unknown-linux-musl/release/umm-generator
scripts/build-release.sh
built=$(sha256sum < "$static_bin")
scripts/cargo-static.sh test
if [ "$(sha256sum < "$static_bin")" != "$built" ]; then
    echo "the static generator that was tested is not the one scripts/build-release.sh built (scripts/cargo-static.sh must build both the same way)" >&2
    exit 1
fi

step "fleet suite (nspawn nodes: a real Consul cluster, umm scenarios 2-7)"
tests/fleet/run.sh

step "fuzz smoke pass (AFL++, 5 s per target; the long run is in docs/security.md)"
fuzz/run.sh 5

step "Debian package: make deb, lintian, contents (scripts/check-deb.sh)"
scripts/deb.sh
scripts/check-deb.sh

step "benchmarks, smoke run (bench/smoke.sh: each runs to its report, the figures are not judged)"
bench/smoke.sh

step "Nova suite (the compute-host drain against a real Nova lab in a chroot)"
tests/nova/run.sh

step "VM suite"
if [ ! -x tests/vm/run.sh ]; then
    echo "tests/vm/run.sh is missing: the VM suite is part of the test command" >&2
    exit 1
fi
tests/vm/run.sh

step "all suites passed"
