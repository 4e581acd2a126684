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
    curl               # rebootmgr/tests/consul_tls.rs: ACL policy and token over HTTPS
    musl-tools         # x86_64-linux-musl-gcc: ring (rustls, via umm-testsupport) in the static generator's tests
    rustc-web cargo-web rust-web-src  # scripts/cargo-static.sh: the static generator with std rebuilt (-Z build-std)
    prometheus-node-exporter  # tests/metrics.rs, rebootmgr/tests/observability.rs: scrapes the textfiles
    prometheus-alertmanager   # rebootmgr/tests/observability.rs: the silence held as a lease
)
"$here/apt-ensure.sh" test-deps "${apt_packages[@]}"
# pytest, and pytest-xdist: the fleet and VM suites run two workers.
for mod in pytest xdist; do
    if ! python3 -c "import $mod" 2>/dev/null; then
        pkg=pytest; [[ $mod == xdist ]] && pkg=pytest-xdist
        echo "test-deps: installing $pkg"
        python3 -m pip install -q "$pkg"
    fi
done
# The static generator (scripts/build-release.sh).
if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
    rustup target add x86_64-unknown-linux-musl
fi
for c in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$c"; then
        rustup component add "$c"
    fi
done
# make deb and its check (tests/man.rs, tests/units.rs and the VM suite need them too):
# pandoc, man-db, groff, dpkg-dev, lintian, cargo-deb.
"$here/deb-deps.sh"
if [ -x "$here/install-consul.sh" ]; then
    CONSUL_BIN=$("$here/install-consul.sh")
    echo "test-deps: consul at $CONSUL_BIN"
fi
