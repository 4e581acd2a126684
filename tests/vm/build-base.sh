#!/bin/bash
# Builds (once) the cached Debian 12 base rootfs the VM tests boot.
#
#   tests/vm/build-base.sh            -> prints the cache directory on stdout
#
# Cache: ${UMM_VM_CACHE:-/var/cache/umm-vm}/base-<sha256 of this script, 16 hex>/
#   rootfs/       the debootstrapped tree (copied per test run, never booted itself)
#   vmlinuz, initrd.img   the guest kernel and initrd, booted with qemu -kernel/-initrd
#   id_ed25519{,.pub}     root's ssh key for this cache (generated here, never shipped)
#   ok            written last: a directory without it is an interrupted build
# Any change to this script changes the hash, so the next run rebuilds; a fresh
# clone on the same machine reuses the same cache. Old base-* dirs are removed
# when nobody holds their base-HASH.lock (shared flock, see vmlib.build_base).
#
# Installs its own host dependencies (apt): nothing is assumed to be present.
set -euo pipefail

SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
CACHE=${UMM_VM_CACHE:-/var/cache/umm-vm}
MIRROR=${UMM_VM_MIRROR:-}
HASH=$(sha256sum "$SCRIPT" | cut -c1-16)
BASE="$CACHE/base-$HASH"

log() { printf '[build-base] %s\n' "$*" >&2; }

# --- host dependencies ---------------------------------------------------------
HOST_PKGS=(qemu-system-x86 qemu-utils debootstrap openssh-client e2fsprogs
           systemd python3 coreutils util-linux)
missing=()
for p in "${HOST_PKGS[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if ((${#missing[@]})); then
    log "installing host packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9          # one builder at a time; the others wait and then reuse

if [[ -f "$BASE/ok" ]]; then
    echo "$BASE"
    exit 0
fi

# --- build ---------------------------------------------------------------------
start=$(date +%s)
# Other hashes belong to other checkouts (branches, CI clones) that may be
# booting from them right now: a user holds a shared flock on base-HASH.lock
# (vmlib.build_base). Keep the two newest; delete older ones nobody holds.
n=0
for old in $(ls -1dt "$CACHE"/base-* 2>/dev/null); do
    [[ "$old" == *.lock || "$old" == "$BASE" ]] && continue
    n=$((n + 1))
    ((n <= 2)) && continue
    if flock -xn "$old.lock" rm -rf --one-file-system "$old"; then
        rm -f "$old.lock"
        log "removed stale cache $old"
    fi
done
rm -rf --one-file-system "$CACHE"/build-*   # interrupted builds (we hold the build lock)
TMP="$CACHE/build-$HASH"
rm -rf --one-file-system "$TMP"
mkdir -p "$TMP"
ROOT="$TMP/rootfs"

if [[ -z "$MIRROR" ]]; then
    # The host's own Debian mirror (deb822 or one-line sources): the one apt already uses.
    MIRROR=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
             | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -n1 | tr -d ' ' || true)
    if [[ -z "$MIRROR" ]]; then
        log "no Debian mirror in /etc/apt/sources.list*: set MIRROR=<the URL of a Debian mirror>"
        exit 1
    fi
fi
log "debootstrap bookworm from $MIRROR into $ROOT"
debootstrap --variant=minbase \
    --include=systemd-sysv,udev,linux-image-amd64,openssh-server,iproute2,ifupdown,isc-dhcp-client,dbus,procps,kmod \
    bookworm "$ROOT" "$MIRROR" >&2

log "configuring the guest"
echo umm-vm > "$ROOT/etc/hostname"
cat > "$ROOT/etc/hosts" <<'HOSTS'
127.0.0.1	localhost
127.0.1.1	umm-vm
HOSTS
# The harness boots with "root=/dev/vda rw"; the fstab line only names it.
echo '/dev/vda / ext4 rw,errors=remount-ro 0 0' > "$ROOT/etc/fstab"

# DHCP on the virtio NIC. The harness boots with net.ifnames=0, so it is eth0;
# allow-hotplug makes udev bring it up (ifup@eth0.service) whatever the target.
cat > "$ROOT/etc/network/interfaces" <<'NET'
source /etc/network/interfaces.d/*
auto lo
iface lo inet loopback
allow-hotplug eth0
iface eth0 inet dhcp
NET

# root over ssh with this cache's key only; an empty root password for the
# serial console (debugging a failed boot by hand).
ssh-keygen -q -t ed25519 -N '' -C "umm-vm-test-$HASH" -f "$TMP/id_ed25519"
install -d -m 0700 "$ROOT/root/.ssh"
install -m 0600 "$TMP/id_ed25519.pub" "$ROOT/root/.ssh/authorized_keys"
chroot "$ROOT" passwd -d root >/dev/null
cat > "$ROOT/etc/ssh/sshd_config.d/umm-vm.conf" <<'SSHD'
PermitRootLogin prohibit-password
UseDNS no
SSHD

# sysrq for the crash-loop scenario; a persistent journal to read failed boots.
echo 'kernel.sysrq = 1' > "$ROOT/etc/sysctl.d/90-umm-vm-sysrq.conf"
mkdir -p "$ROOT/var/log/journal"   # systemd-tmpfiles fixes owner and mode at boot

# A fixed machine id: no first-boot presets in the clones.
if [[ ! -s "$ROOT/etc/machine-id" ]] || grep -q uninitialized "$ROOT/etc/machine-id"; then
    systemd-machine-id-setup --root="$ROOT" >&2
fi

# Timers that could fire during a test and only add noise.
for t in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
    systemctl --root="$ROOT" disable "$t" >/dev/null 2>&1 || true
    systemctl --root="$ROOT" mask "$t" >/dev/null 2>&1 || true
done

# The guest workload: stands for "the controller's services".
cat > "$ROOT/etc/systemd/system/demo-app.service" <<'UNIT'
[Unit]
Description=umm VM test workload (stands for the controller's services)

[Service]
ExecStart=/bin/sleep infinity

[Install]
WantedBy=multi-user.target
UNIT
systemctl --root="$ROOT" enable demo-app.service >&2

# Crash-loop scenario: reboots uncleanly early in a normal boot (before sshd,
# so a crashing boot never answers ssh). Installed disabled; tests enable it.
cat > "$ROOT/etc/systemd/system/umm-test-crash.service" <<'UNIT'
[Unit]
Description=umm VM test: unclean reboot early in every normal boot
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "umm-test-crash: sysrq reboot now" > /dev/kmsg; echo b > /proc/sysrq-trigger; sleep 60'

[Install]
WantedBy=multi-user.target
UNIT

# Guest kernel and initrd, booted directly by qemu. The initrd only needs the
# virtio disk and ext4: MODULES=list makes it 6 MB instead of 36 MB, which saves
# ~3 s of every TCG boot.
kver=$(ls "$ROOT/lib/modules" | sort -V | tail -n1)
sed -i 's/^MODULES=.*/MODULES=list/' "$ROOT/etc/initramfs-tools/initramfs.conf"
printf '%s\n' virtio_pci virtio_blk ext4 >> "$ROOT/etc/initramfs-tools/modules"
chroot "$ROOT" update-initramfs -u -k "$kver" >&2
cp "$ROOT/boot/vmlinuz-$kver" "$TMP/vmlinuz"
cp "$ROOT/boot/initrd.img-$kver" "$TMP/initrd.img"
echo "$kver" > "$TMP/kernel-version"

chroot "$ROOT" apt-get clean
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin

date -u +%FT%TZ > "$TMP/ok"
mv -T "$TMP" "$BASE"
log "built $BASE in $(( $(date +%s) - start )) s ($(du -sh "$BASE/rootfs" | cut -f1) rootfs, kernel $kver)"
echo "$BASE"
