#!/bin/bash
# Builds (once) the cached layer with Debian 12's corosync and pacemaker that the
# Pacemaker fleet test (tests/fleet/test_pacemaker.py) boots, on top of the VM
# suite's base rootfs, without touching the base itself.
#
#   tests/fleet/build-pacemaker-tree.sh BASE_DIR   -> prints the layer directory on stdout
#
# Cache: ${UMM_FLEET_CACHE:-/var/cache/umm-fleet}/pacemaker-<hash>/
#   upper/   an overlayfs upper dir over BASE_DIR/rootfs in which
#            `apt-get install` of PACKAGES ran (chroot, the host's network)
#   ok       written last: a directory without it is an interrupted build
# The hash covers this script (its package list) and the base's directory name
# (itself the hash of the base's build script): either changing rebuilds.
# Mounted by fleetlib as lowerdir=upper:BASE/rootfs (read-only, shared by nodes).
set -euo pipefail

SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
BASE=$(readlink -f "${1:?usage: $0 BASE_DIR}")
CACHE=${UMM_FLEET_CACHE:-/var/cache/umm-fleet}
PACKAGES=(corosync pacemaker pacemaker-cli-utils resource-agents)
HASH=$( (sha256sum "$SCRIPT"; basename "$BASE") | sha256sum | cut -c1-16)
OUT="$CACHE/pacemaker-$HASH"

log() { printf '[build-pacemaker-tree] %s\n' "$*" >&2; }

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
if [[ -f "$OUT/ok" ]]; then
    echo "$OUT"
    exit 0
fi
start=$(date +%s)
rm -rf --one-file-system "$OUT"
mkdir -p "$OUT/upper" "$OUT/work" "$OUT/root"
root="$OUT/root"
cleanup() {
    for m in "$root/dev/pts" "$root/dev" "$root/proc" "$root/sys" "$root/etc/resolv.conf" "$root"; do
        mountpoint -q "$m" 2>/dev/null && umount -l "$m"
    done
    return 0
}
trap cleanup EXIT
mount -t overlay overlay -o "lowerdir=$BASE/rootfs,upperdir=$OUT/upper,workdir=$OUT/work" "$root"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount -t sysfs sysfs "$root/sys"
# The host's resolver for apt inside the chroot (bind-mounted: nothing of it stays in the layer).
touch "$root/etc/resolv.conf"
mount --bind /etc/resolv.conf "$root/etc/resolv.conf"
# No service is started inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
export DEBIAN_FRONTEND=noninteractive
log "apt-get install ${PACKAGES[*]}"
chroot "$root" apt-get update -q >&2
chroot "$root" apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >&2
chroot "$root" apt-get clean
rm -f "$root/usr/sbin/policy-rc.d"
rm -rf "$root"/var/lib/apt/lists/*
# corosync and pacemaker stay enabled (the packages enable them): a node starts its
# cluster stack at boot, as a production node does; the test writes each node's
# /etc/corosync/corosync.conf and authkey before its first boot.
cleanup
trap - EXIT
rm -rf "$OUT/work" "$OUT/root"
touch "$OUT/ok"
log "layer $OUT in $(( $(date +%s) - start )) s ($(du -sh "$OUT/upper" | cut -f1))"
echo "$OUT"
