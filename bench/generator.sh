#!/bin/bash
# Benchmark: umm-generator against systemd's own systemd-system-update-generator,
# with /bin/true as the floor (the cost of starting any process).
#
#   bench/generator.sh [--rounds N] [--no-trigger] [--check]
#
#   --rounds N     interleaved timing rounds (default 1000, after 30 warm-up rounds)
#   --no-trigger   do not measure systemd's generator with /system-update present
#                  (that case creates /system-update on this machine for the
#                  duration of each such invocation only, and removes it)
#   --check        exit non-zero when a target is missed (default: report only;
#                  the exit status is non-zero only when the measurement failed)
#
# Installs what it needs (valgrind, GNU time, systemd, python3, binutils) with
# apt-get on Debian, builds with scripts/build-release.sh (the static musl
# generator that is installed, and the glibc-dynamic one as a reference), then
# runs bench/generator.py. See docs/benchmarks.md.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

for a in "$@"; do
    case "$a" in
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    esac
done

# The trigger file is created by generator.py with this marker line; if
# python is killed between creating and removing it, this trap still removes
# it. A /system-update without the marker is never touched.
MARK="umm-bench: temporary trigger, safe to delete"
cleanup_trigger() {
    if [ -f /system-update ] && [ "$(head -c 200 /system-update 2>/dev/null)" = "$MARK" ]; then
        rm -f /system-update
    fi
}
trap cleanup_trigger EXIT
trap 'cleanup_trigger; exit 130' INT
trap 'cleanup_trigger; exit 143' TERM HUP
cleanup_trigger   # a leftover of an earlier killed run

sd_gen=
find_sd_gen() {
    for d in /usr/lib/systemd/system-generators /lib/systemd/system-generators; do
        if [ -x "$d/systemd-system-update-generator" ]; then
            sd_gen="$d/systemd-system-update-generator"
            return 0
        fi
    done
    return 1
}

need=()
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
[ -x /usr/bin/time ] || need+=(time)
command -v strip >/dev/null 2>&1 || need+=(binutils)
find_sd_gen || need+=(systemd)
if [ ${#need[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "bench: missing ${need[*]} and no apt-get to install them" >&2
        exit 1
    fi
    sudo=
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "bench: installing ${need[*]}" >&2
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
    find_sd_gen || { echo "bench: systemd-system-update-generator not found after installing systemd" >&2; exit 1; }
fi

echo "bench: scripts/build-release.sh" >&2
scripts/build-release.sh >&2
umm_gen="$here/target/x86_64-unknown-linux-musl/release/umm-generator"
umm_dyn="$here/target/release/umm-generator"
for b in "$umm_gen" "$umm_dyn"; do
    [ -x "$b" ] || { echo "bench: $b not built" >&2; exit 1; }
done

# Not exec: the trap above must outlive python.
python3 "$here/bench/generator.py" --umm "$umm_gen" --dynamic "$umm_dyn" --systemd "$sd_gen" \
    --floor /bin/true --mark "$MARK" --repo "$here" "$@"
