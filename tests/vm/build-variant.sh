#!/bin/bash
# Builds (once) a variant of the cached base rootfs for the init-system VM tests
# (tests/vm/test_initsystems.py):
#
#   tests/vm/build-variant.sh sysvinit   bookworm with sysvinit-core instead of systemd-sysv,
#                                        a demo-app LSB service in runlevels 2-5
#   tests/vm/build-variant.sh dracut     the base with dracut (initramfs built per test,
#                                        after umm is installed)
#   tests/vm/build-variant.sh grub       the base with grub-pc (BIOS), root on /dev/vda1 of a
#                                        partitioned disk; grub-install and update-grub run in
#                                        the guest (tests/vm/test_grub.py)
#
# Prints the variant's directory: rootfs/ and ok. Cached next to the base in
# ${UMM_VM_CACHE:-/var/cache/umm-vm}/<variant>-<hash of base dir name + this script>/.
# Packages come from the host's Debian mirror with apt-get inside a chroot.
set -euo pipefail
variant=${1:?usage: build-variant.sh sysvinit|dracut|grub}
here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
base=$("$here/build-base.sh" | tail -n1)
CACHE=${UMM_VM_CACHE:-/var/cache/umm-vm}
hash=$( { basename "$base"; cat "$(readlink -f "$0")"; } | sha256sum | cut -c1-16)
out="$CACHE/$variant-$hash"
log() { printf '[build-variant] %s\n' "$*" >&2; }

exec 9>"$CACHE/.lock-$variant"
flock 9
if [[ -f "$out/ok" ]]; then echo "$out"; exit 0; fi
for old in "$CACHE/$variant"-*; do
    [[ -e "$old" && "$old" != "$out" ]] && rm -rf --one-file-system "$old"
done
tmp="$out.tmp"
rm -rf --one-file-system "$tmp"
mkdir -p "$tmp"
root="$tmp/rootfs"
start=$(date +%s)
cp -a "$base/rootfs" "$root"

# apt inside the chroot: host resolver, no daemons started, /proc for dpkg.
cp /etc/resolv.conf "$root/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
trap 'umount "$root/proc" 2>/dev/null || true' EXIT
export DEBIAN_FRONTEND=noninteractive
chroot "$root" apt-get update -q >&2

case "$variant" in
sysvinit)
    log "replacing systemd-sysv by sysvinit-core"
    chroot "$root" apt-get install -y -q --no-install-recommends \
        sysvinit-core sysv-rc initscripts orphan-sysvinit-scripts procps >&2
    # The workload, as an LSB service of the runlevels (stands for the
    # controller's services, like demo-app.service on systemd).
    cat > "$root/etc/init.d/demo-app" <<'INIT'
#!/bin/sh
### BEGIN INIT INFO
# Provides:          demo-app
# Required-Start:    $local_fs $network
# Required-Stop:     $local_fs
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: umm VM test workload
### END INIT INFO
case "$1" in
  start) start-stop-daemon --start --background --make-pidfile --pidfile /run/demo-app.pid --exec /bin/sleep -- infinity ;;
  stop) start-stop-daemon --stop --oknodo --pidfile /run/demo-app.pid; rm -f /run/demo-app.pid ;;
  status) start-stop-daemon --status --pidfile /run/demo-app.pid ;;
esac
INIT
    chmod 755 "$root/etc/init.d/demo-app"
    chroot "$root" update-rc.d demo-app defaults >&2
    # Crash-loop scenario: an LSB script that reboots uncleanly early in the
    # runlevel (before ssh); installed, enabled by the test with update-rc.d.
    cat > "$root/etc/init.d/umm-test-crash" <<'INIT'
#!/bin/sh
### BEGIN INIT INFO
# Provides:          umm-test-crash
# Required-Start:    $local_fs
# Required-Stop:
# X-Start-Before:    ssh
# Default-Start:     2 3 4 5
# Default-Stop:
# Short-Description: umm VM test: unclean reboot early in every normal boot
### END INIT INFO
[ "$1" = start ] || exit 0
echo "umm-test-crash: sysrq reboot now" > /dev/kmsg
echo b > /proc/sysrq-trigger
sleep 60
INIT
    chmod 755 "$root/etc/init.d/umm-test-crash"
    ;;
dracut)
    log "installing dracut"
    chroot "$root" apt-get install -y -q --no-install-recommends dracut dracut-core >&2
    ;;
grub)
    log "installing grub-pc"
    # Nothing is installed to a disk at package time (there is none): the
    # test runs grub-install in the guest, as an admin would.
    echo "grub-pc grub-pc/install_devices multiselect" | chroot "$root" debconf-set-selections
    chroot "$root" apt-get install -y -q --no-install-recommends grub-pc >&2
    # The disk is partitioned (vmlib.make_disk_image): root is its first partition.
    echo '/dev/vda1 / ext4 rw,errors=remount-ro 0 1' > "$root/etc/fstab"
    # GRUB on the serial console (the harness reads it), no menu delay, the
    # kernel arguments the harness passes with -append on the other images.
    sed -i -e 's/^GRUB_TIMEOUT=.*/GRUB_TIMEOUT=0/' \
        -e 's/^GRUB_CMDLINE_LINUX_DEFAULT=.*/GRUB_CMDLINE_LINUX_DEFAULT=""/' \
        -e 's/^GRUB_CMDLINE_LINUX=.*/GRUB_CMDLINE_LINUX="console=ttyS0 net.ifnames=0"/' \
        -e 's/^#\{0,1\}GRUB_TERMINAL=.*/GRUB_TERMINAL=serial/' "$root/etc/default/grub"
    echo 'GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"' >> "$root/etc/default/grub"
    grep -q '^GRUB_TERMINAL=serial' "$root/etc/default/grub"
    ;;
*) log "unknown variant $variant"; exit 2 ;;
esac

chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root/usr/sbin/policy-rc.d"
umount "$root/proc"
trap - EXIT
date -u +%FT%TZ > "$tmp/ok"
mv -T "$tmp" "$out"
log "built $out in $(( $(date +%s) - start )) s"
echo "$out"
