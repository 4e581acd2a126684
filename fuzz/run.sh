#!/bin/bash
# Fuzzes every parser umm and rebootmgr run on input they do not control,
# with AFL++ (cargo-afl, stable Rust, persistent mode), one target at a
# time, for a bounded time each, and prints executions, crashes and hangs
# per target and in total. Exits non-zero on any crash or hang (their
# inputs are kept under fuzz/out/<target>/default/{crashes,hangs}).
#
#   fuzz/run.sh SECONDS_PER_TARGET [TARGET...]
#
# Installs cargo-afl (and builds AFL++) when missing. The invariants each
# target checks are in fuzz/src/lib.rs; the figures of the long run are in
# docs/security.md.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:?usage: fuzz/run.sh SECONDS_PER_TARGET [TARGET...]}
shift
all=(cmdline state config legacy_conf duration consul_node_config consul_marker consul_lock consul_health)
targets=("${@:-${all[@]}}")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

if ! cargo afl --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-afl (builds AFL++; a few minutes)" >&2
    cargo install --locked cargo-afl -j1
fi
# cargo-afl builds AFL++ for this toolchain on first use; make it explicit.
cargo afl config --build >/dev/null 2>&1 || true

export CARGO_TARGET_DIR="$PWD/target"
echo "fuzz: building the targets (cargo afl build --release)" >&2
cargo afl build --release --quiet -j"${FUZZ_JOBS:-2}"

# Shared machine: no CPU binding, no UI; a core pattern piped to a
# program (systemd-coredump, apport) is fine for us.
export AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_QUIET=1
# A panic is a crash to AFL++; printing its backtrace (RUST_BACKTRACE=1
# in the caller's environment) takes long enough to count as a hang too.
export RUST_BACKTRACE=0
stat_of() { awk -F' *: *' -v k="$2" '$1 == k { print $2 }' "$1"; }

total_execs=0 total_crashes=0 total_hangs=0
printf '%-20s %12s %10s %8s %7s\n' target executions execs/s crashes hangs
for t in "${targets[@]}"; do
    out="out/$t"
    rm -rf "$out"
    mkdir -p "$out"
    # -V: stop after that many seconds; -t 5000: an input that takes 5 s is a
    # hang (the inputs take microseconds; 1 s is within reach of a busy
    # shared machine's scheduling).
    cargo afl fuzz -V "$secs" -t 5000 -i "seeds/$t" -o "$out" "target/release/$t" \
        >"$out/afl.log" 2>&1 || {
        echo "fuzz: afl-fuzz failed for $t:" >&2
        tail -20 "$out/afl.log" >&2
        exit 1
    }
    stats="$out/default/fuzzer_stats"
    execs=$(stat_of "$stats" execs_done)
    speed=$(stat_of "$stats" execs_per_sec)
    crashes=$(stat_of "$stats" saved_crashes)
    hangs=$(stat_of "$stats" saved_hangs)
    printf '%-20s %12s %10s %8s %7s\n' "$t" "$execs" "${speed%.*}" "$crashes" "$hangs"
    total_execs=$((total_execs + execs))
    total_crashes=$((total_crashes + crashes))
    total_hangs=$((total_hangs + hangs))
done
printf '%-20s %12s %10s %8s %7s\n' total "$total_execs" "" "$total_crashes" "$total_hangs"
if [ "$total_crashes" -gt 0 ] || [ "$total_hangs" -gt 0 ]; then
    echo "fuzz: crashes or hangs found: inputs in fuzz/out/<target>/default/{crashes,hangs};" \
        "replay one with: fuzz/target/release/<target> < FILE" >&2
    exit 1
fi
