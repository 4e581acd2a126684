#!/bin/sh
# The release build that scripts/install.sh, the Debian package, the VM suite and
# the benchmarks use:
#   scripts/build-release.sh
# 1. cargo build --release --workspace        -> target/release/{umm,rebootmgr,...}
# 2. the generator (also umm-init, PID 1) once more, statically linked against musl,
#    with the standard library rebuilt for it (scripts/cargo-static.sh says how and why)
#                                             -> target/x86_64-unknown-linux-musl/release/umm-generator
# No dynamic loader and no libc relocations at boot: it starts faster than /bin/true,
# and it is 0.5 MiB (docs/benchmarks.md). Only the generator: umm and rebootmgr stay
# dynamically linked against glibc.
#
# Step 2 is `cargo test --no-run`: it builds the binary exactly as scripts/test.sh's
# `scripts/cargo-static.sh test` does (a `cargo build` rebuilds std with another set of
# crates and gives another binary), so the binary that is tested is the one that is
# installed; scripts/test.sh checks that by its SHA-256.
set -eu
cd "$(dirname "$0")/.."
cargo build --release --workspace
scripts/cargo-static.sh test --no-run
