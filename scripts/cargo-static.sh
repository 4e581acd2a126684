#!/bin/bash
# The one definition of how the static umm-generator (also umm-init, PID 1) is
# built: scripts/build-release.sh builds it with this (`test --no-run`),
# scripts/test.sh tests it with this, so the tests run the very binary that is
# installed.
#
#   scripts/cargo-static.sh test [CARGO ARGS...]
#
# runs `cargo test --release -p umm-generator --target x86_64-unknown-linux-musl`
# with the standard library rebuilt for the generator (docs/benchmarks.md,
# "Size"). What that changes, and why each step is there:
#
#   -Z build-std=std,panic_unwind, -Z build-std-features=optimize_for_size
#       std without its "backtrace" feature: no DWARF symbolizer (gimli,
#       addr2line: ~200 KB) in a binary that never prints a backtrace. Panics
#       still unwind (catch_unwind is what keeps PID 1 exec'ing the init); the
#       panic message and its file:line are unchanged; RUST_BACKTRACE does
#       nothing. optimize_for_size picks std's smaller algorithms.
#   opt-level "z" (this build only; the workspace stays at "s")
#       7 KB smaller, ~45% more instructions (~65k, about 20 µs); the wall time
#       stays below /bin/true's (bench/generator.sh).
#   rust-lld with --icf=all and -z pack-relative-relocs
#       identical functions folded; the static-pie's relative relocations in
#       DT_RELR form (14 KB -> 0.2 KB), which musl >= 1.2.4's rcrt1 applies.
#       Still a static PIE: ASLR is kept (gold would drop it).
#   --remap-path-prefix
#       source paths of std and of crates.io crates in panic locations are
#       relative (shorter, and no build machine's paths in the binary).
#
# -Z build-std needs the standard library's source of the compiler that builds
# it. rustup cannot download rust-src here, so the compiler is Debian's
# rustc-web with its rust-web-src (installed with apt-get when missing; the same
# toolchain family Debian builds its own Rust packages with), made to accept
# -Z by RUSTC_BOOTSTRAP=1, for this one binary. The C start files, musl's
# libc.a (1.2.5) and libunwind.a are the rustup musl target's "self-contained"
# objects (Debian 12's musl 1.2.3 cannot apply DT_RELR), the linker is rustup's
# rust-lld.
#
# UMM_STATIC=plain: the plain build (rustup's compiler and precompiled std:
# same code, ~800 KB) — for machines without Debian's packages.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
# Only `test` (with --no-run to build): a `cargo build` rebuilds std with another
# set of crates and links another binary than the one the tests ran.
mode=${1:?usage: scripts/cargo-static.sh test [CARGO ARGS...]}
shift
[ "$mode" = test ] || { echo "cargo-static.sh: the mode is 'test' ('test --no-run' builds), not '$mode': a 'cargo build' would give another binary than the tested one" >&2; exit 2; }
musl=x86_64-unknown-linux-musl

if ! rustup target list --installed 2>/dev/null | grep -qx "$musl"; then
    command -v rustup >/dev/null || {
        echo "cargo-static.sh: the Rust target $musl is needed for the static generator and there is no rustup to add it: install the Rust standard library for $musl" >&2
        exit 1
    }
    rustup target add "$musl" >&2
fi

if [ "${UMM_STATIC:-}" = plain ]; then
    echo "cargo-static.sh: UMM_STATIC=plain: the generator is built with the precompiled std (larger, same behaviour)" >&2
    exec cargo "$mode" --release -p umm-generator --target "$musl" "$@"
fi

deb_rustc=/usr/bin/rustc deb_cargo=/usr/bin/cargo
libsrc=/usr/lib/rustlib/src/rust/library
if [ ! -d "$libsrc/std" ] || ! "$deb_rustc" -V 2>/dev/null | grep -q .; then
    command -v apt-get >/dev/null || {
        echo "cargo-static.sh: the size-optimised generator needs a rustc with its standard library's source ($libsrc); on Debian: apt-get install rustc-web cargo-web rust-web-src. Or build the plain one: UMM_STATIC=plain $0 $mode" >&2
        exit 1
    }
    "$here/scripts/apt-ensure.sh" cargo-static.sh rustc-web cargo-web rust-web-src
fi
[ -d "$libsrc/std" ] || { echo "cargo-static.sh: $libsrc/std is missing after installing rust-web-src" >&2; exit 1; }

rustup_sysroot=$("$(rustup which rustc)" --print sysroot)
crt="$rustup_sysroot/lib/rustlib/$musl/lib/self-contained"
gccld="$rustup_sysroot/lib/rustlib/x86_64-unknown-linux-gnu/bin/gcc-ld"
for f in "$crt/rcrt1.o" "$crt/libc.a" "$crt/libunwind.a" "$gccld/ld.lld"; do
    [ -e "$f" ] || { echo "cargo-static.sh: $f is missing (rustup's $musl target and its rust-lld)" >&2; exit 1; }
done
# A sysroot that holds only the self-contained objects: rustc looks for them
# under <sysroot>/lib/rustlib/<target>/lib/self-contained; std is built from
# source, not taken from a sysroot.
target_dir=${CARGO_TARGET_DIR:-$here/target}
sysroot="$target_dir/static-sysroot"
mkdir -p "$sysroot/lib/rustlib/$musl/lib"
ln -sfn "$crt" "$sysroot/lib/rustlib/$musl/lib/self-contained"

flags=(
    "--sysroot=$sysroot"
    -C link-arg=-fuse-ld=lld "-C" "link-arg=-B$gccld"
    -C link-arg=-Wl,--icf=all -C link-arg=-Wl,-z,pack-relative-relocs
    "--remap-path-prefix=$libsrc/="
)
for d in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do
    [ -d "$d" ] && flags+=("--remap-path-prefix=$d=")
done

export RUSTC="$deb_rustc" RUSTC_BOOTSTRAP=1
# Only for the target's units: build scripts and proc macros are built for the
# host without these (cargo applies them so when --target is given).
unset RUSTFLAGS
CARGO_ENCODED_RUSTFLAGS=$(IFS=$'\x1f'; printf '%s' "${flags[*]}")
export CARGO_ENCODED_RUSTFLAGS
exec "$deb_cargo" "$mode" --release -p umm-generator --target "$musl" \
    -Z build-std=std,panic_unwind,test -Z build-std-features=optimize_for_size \
    --config 'profile.release.opt-level="z"' "$@"
