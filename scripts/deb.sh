#!/bin/sh
# Builds the Debian package (`make deb`): target/debian/umm_<version>_<arch>.deb.
#   scripts/deb.sh [--deb-version VERSION] [--output DIR]   (a test build of another version)
# 1. scripts/build-release.sh: the workspace, and the static (musl) umm-generator
#    (stripped: profile.release has strip = true)
# 2. renders into target/deb-gen/: the man pages (scripts/man.sh), the bash/zsh/fish
#    completions (`umm completions SHELL`, `rebootmgr completions SHELL`) and the
#    maintainer scripts (packaging/deb/* with packaging/deb/functions.sh put in)
# 3. cargo deb --no-build: the files of dist/ plus those (assets in Cargo.toml)
# Installs what it needs first (scripts/deb-deps.sh: cargo-deb, pandoc, ...).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
args=
while [ $# -gt 0 ]; do
    case "$1" in
        --deb-version|--output) args="$args $1 ${2:?$1 needs a value}"; shift 2 ;;
        *) echo "deb.sh: unknown argument '$1' (try: scripts/deb.sh [--deb-version V] [--output DIR])" >&2; exit 2 ;;
    esac
done
scripts/deb-deps.sh
scripts/build-release.sh
bin=${CARGO_TARGET_DIR:-$here/target}/release
gen=$here/target/deb-gen
rm -rf "$gen"
mkdir -p "$gen/completions/bash" "$gen/completions/zsh" "$gen/completions/fish" "$gen/maint" "$gen/bin"
# The generator the package ships is the static build (cargo-deb's target/release/ prefix
# cannot name another target's directory).
cp "${CARGO_TARGET_DIR:-$here/target}/x86_64-unknown-linux-musl/release/umm-generator" "$gen/bin/"
scripts/man.sh "$gen/man"
for b in umm rebootmgr; do
    "$bin/$b" completions bash > "$gen/completions/bash/$b"
    "$bin/$b" completions zsh > "$gen/completions/zsh/_$b"
    "$bin/$b" completions fish > "$gen/completions/fish/$b.fish"
done
for s in postinst prerm postrm; do
    awk -v lib="packaging/deb/functions.sh" '
        $0 == "#FUNCTIONS#" { while ((getline l < lib) > 0) print l; next } { print }
    ' "packaging/deb/$s" > "$gen/maint/$s"
    chmod 0755 "$gen/maint/$s"
done
# cargo-deb clears target/debian/ of the package's .debs even when it writes elsewhere
# (--output): keep them, so a test build of another version leaves `make deb`'s package.
saved=$(mktemp -d)
find target/debian -maxdepth 1 -name 'umm_*.deb' -exec mv {} "$saved/" \; 2>/dev/null || true
# shellcheck disable=SC2086
cargo deb -p umm --no-build $args || { rc=$?; mv "$saved"/*.deb target/debian/ 2>/dev/null; rmdir "$saved"; exit $rc; }
mkdir -p target/debian
for f in "$saved"/*.deb; do [ -e "$f" ] && [ ! -e "target/debian/${f##*/}" ] && mv "$f" target/debian/; done
rm -rf "$saved"
