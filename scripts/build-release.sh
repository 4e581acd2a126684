#!/bin/sh
# The release build that scripts/install.sh, the VM suite and the benchmarks use:
#   scripts/build-release.sh
# 1. cargo build --release --workspace        -> target/release/{umm,rebootmgr,...}
# 2. the generator (also umm-init, PID 1) once more, statically linked against musl:
#    cargo build --release -p umm-generator --target x86_64-unknown-linux-musl
#                                             -> target/x86_64-unknown-linux-musl/release/umm-generator
# No dynamic loader and no libc relocations at boot: it starts faster than /bin/true
# (docs/benchmarks.md). Only the generator: umm and rebootmgr stay dynamically linked
# against glibc. Installs the musl target with rustup when it is missing.
set -eu
cd "$(dirname "$0")/.."
musl=x86_64-unknown-linux-musl
cargo build --release --workspace
if ! rustup target list --installed 2>/dev/null | grep -qx "$musl"; then
    command -v rustup >/dev/null || {
        echo "build-release.sh: the Rust target $musl is needed for the static generator and there is no rustup to add it: install the Rust standard library for $musl" >&2
        exit 1
    }
    rustup target add "$musl"
fi
cargo build --release -p umm-generator --target "$musl"
