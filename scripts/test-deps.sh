#!/bin/bash
# Installs everything the test suite needs on a fresh Debian 12 machine, and
# nothing when it is already there. Called by scripts/test.sh; safe to re-run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

apt_packages=(
    dbus-daemon        # tests/cli_dbus.rs runs a real bus
    systemd            # systemd-analyze verify, systemd-system-update-generator (bench)
    util-linux         # setpriv, flock (non-root caller and lock tests)
    strace             # tests/cli_commands.rs: new directories are fsynced in their parents
    grub-common        # grub-script-check, grub-editenv
    qemu-system-x86    # VM suite
    qemu-utils         # qemu-img overlays
    debootstrap        # VM base image
    openssh-client     # reaching the guests
    e2fsprogs          # mkfs.ext4 -d; chattr (write-failure tests)
    cpio               # inspecting initramfs images
    valgrind time      # benchmarks
    systemd-container  # systemd-nspawn: the fleet tests (tests/fleet)
    iproute2           # the fleet's bridge and veths
)
missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "test-deps: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! python3 -c 'import pytest' 2>/dev/null; then
    echo "test-deps: installing pytest"
    python3 -m pip install -q pytest
fi
# The static generator (scripts/build-release.sh).
if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
    rustup target add x86_64-unknown-linux-musl
fi
for c in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$c"; then
        rustup component add "$c"
    fi
done
if [ -x "$here/install-consul.sh" ]; then
    CONSUL_BIN=$("$here/install-consul.sh")
    echo "test-deps: consul at $CONSUL_BIN"
fi
