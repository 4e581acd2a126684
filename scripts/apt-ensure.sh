#!/bin/bash
# Installs the named Debian packages that are not installed yet (none: does nothing).
#   scripts/apt-ensure.sh WHO PACKAGE...     (WHO names the caller in the message)
set -euo pipefail
who=$1; shift
missing=()
for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "$who: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
