#!/bin/bash
# Installs what `make deb` (scripts/deb.sh) and its check (scripts/check-deb.sh) need, and
# nothing when it is already there: pandoc (man pages), man-db/groff (rendering them),
# dpkg-dev (dpkg-shlibdeps: the computed Depends), lintian, and cargo-deb (cargo install).
set -euo pipefail
"$(dirname "$0")/apt-ensure.sh" deb-deps pandoc man-db groff-base dpkg-dev liblzma-dev lintian
if ! command -v cargo-deb >/dev/null 2>&1; then
    echo "deb-deps: installing cargo-deb (cargo install --locked cargo-deb)" >&2
    cargo install --locked cargo-deb >&2
fi
