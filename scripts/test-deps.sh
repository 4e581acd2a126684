#!/bin/sh
# Installs what the test suite needs beyond Rust, on Debian 12 (run as root):
#   grub-common  grub-script-check, used by tests/grub.rs on grub.d/55_umm's output
#   python3      tests/upstart_check.py (the upstart job checker)
# Idempotent; the README's test command (.ci/run) calls it.
set -eu
need=
command -v grub-script-check >/dev/null 2>&1 || need="$need grub-common"
command -v python3 >/dev/null 2>&1 || need="$need python3"
if [ -n "$need" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $need
fi
