#!/bin/bash
# Builds (once) the Upstart image variant for tests/vm/test_upstart.py: the
# sysvinit variant (build-variant.sh sysvinit: sysv-rc, initscripts, the
# demo-app and umm-test-crash LSB scripts) with Upstart 1.13.2 and libnih built
# from the exact upstream sources in $UMM_SHARED/upstart (default
# <repo>/../shared/upstart; SHA256SUMS verified) as /sbin/init.
#
# Prints the variant's directory: rootfs/ and ok. Cached in
# ${UMM_VM_CACHE:-/var/cache/umm-vm}/upstart-<hash of the sysvinit variant's
# dir name + this script + SHA256SUMS + the patch>/. A separate script so that
# changing it does not rebuild the other variants.
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
CACHE=${UMM_VM_CACHE:-/var/cache/umm-vm}
log() { printf '[build-upstart] %s\n' "$*" >&2; }
shared=${UMM_SHARED:-$(cd "$here/../../.." && pwd)/shared}
src="$shared/upstart"
if [[ ! -f "$src/SHA256SUMS" ]]; then
    log "no Upstart sources: $src/SHA256SUMS does not exist."
    log "Put the libnih and upstart tarballs, SHA256SUMS and upstart-sysmacros.patch"
    log "(see docs/init-systems.md) in <repo>/../shared/upstart/, or set UMM_SHARED to the"
    log "directory that holds upstart/."
    exit 1
fi
if ! (cd "$src" && sha256sum --quiet --strict -c SHA256SUMS >&2); then
    log "$src: the files do not match SHA256SUMS; restore the exact upstream tarballs"
    exit 1
fi
[[ -f "$src/upstart-sysmacros.patch" ]] || { log "$src/upstart-sysmacros.patch is missing"; exit 1; }
from=$("$here/build-variant.sh" sysvinit | tail -n1)
hash=$( { basename "$from"; cat "$(readlink -f "$0")" "$src/SHA256SUMS" "$src/upstart-sysmacros.patch"; } \
    | sha256sum | cut -c1-16)
out="$CACHE/upstart-$hash"

exec 9>"$CACHE/.lock-upstart"
flock 9
if [[ -f "$out/ok" ]]; then echo "$out"; exit 0; fi
for old in "$CACHE"/upstart-*; do
    [[ -e "$old" && "$old" != "$out" ]] && rm -rf --one-file-system "$old"
done
tmp="$out.tmp"
root="$tmp/rootfs"
build="$tmp/build"
# Never leave a mounted /proc behind (nor copy a tree that has one: cp -x and
# the copies are made before any mount), and never a half-built .tmp.
cleanup() {
    local rc=$?
    for m in "$build/proc" "$root/proc"; do
        mountpoint -q "$m" 2>/dev/null && umount "$m"
    done
    if (( rc != 0 )); then
        rm -rf --one-file-system "$tmp"
        log "failed (exit $rc); removed $tmp"
    fi
}
for m in "$tmp/build/proc" "$tmp/rootfs/proc"; do
    mountpoint -q "$m" 2>/dev/null && umount "$m"
done
rm -rf --one-file-system "$tmp"
mkdir -p "$tmp"
trap cleanup EXIT
start=$(date +%s)
cp -a -x "$from/rootfs" "$root"
cp /etc/resolv.conf "$root/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
# Build in a throwaway copy with the build deps (../shared/upstart/README.md's
# facts), install into a staging dir, copy that into the image.
cp -a -x "$root" "$build"
mount -t proc proc "$root/proc"
mount -t proc proc "$build/proc"
export DEBIAN_FRONTEND=noninteractive
log "installing the build deps"
chroot "$build" apt-get update -q >&2
chroot "$build" apt-get install -y -q --no-install-recommends build-essential autoconf automake \
    libtool pkg-config gettext autopoint libdbus-1-dev libexpat1-dev libjson-c-dev libudev-dev \
    libblkid-dev python3 patch >&2
mkdir -p "$build/src"
tar -xzf "$src"/libnih-*.tar.gz -C "$build/src"
tar -xzf "$src"/upstart-*.tar.gz -C "$build/src"
cp "$src/upstart-sysmacros.patch" "$build/src/"
log "building libnih and upstart"
chroot "$build" sh -ec '
    lib=/usr/lib/x86_64-linux-gnu
    cd /src/libnih-*
    autoreconf -fi >/dev/null 2>&1
    ./configure -q --prefix=/usr --libdir=$lib CFLAGS="-g -O2 -fcommon"
    make -s -j2 >/dev/null
    make -s install >/dev/null
    make -s install DESTDIR=/stage >/dev/null
    cd /src/upstart-*
    patch -p1 < /src/upstart-sysmacros.patch
    autoreconf -fi >/dev/null 2>&1
    ./configure -q --prefix=/usr --exec-prefix=/usr --sysconfdir=/etc --localstatedir=/var \
        --libdir=$lib --disable-abi-check --program-transform-name="s/^init\$/upstart/" \
        CFLAGS="-g -O2 -fcommon"
    make -s -j2 >/dev/null
    make -s install DESTDIR=/stage >/dev/null
    rm -rf /stage/usr/include /stage/usr/share/man /stage/usr/share/doc /stage/usr/lib/x86_64-linux-gnu/*.a
' >&2
# --remove-destination: sysvinit's telinit, reboot, poweroff are links
# (to init, halt); copying onto them would write through them.
extra=$(cd "$build/stage" && ls -A | grep -vxE 'usr|etc|var' || true)
[[ -z "$extra" ]] || { log "unexpected top-level dirs in the staged install: $extra"; exit 1; }
cp -a --remove-destination "$build/stage/." "$root/"
[[ -f "$root/usr/sbin/telinit" && ! -L "$root/usr/sbin/telinit" ]] \
    || { log "upstart's telinit did not replace sysvinit's"; exit 1; }
# The runtime library the base lacks.
if ! chroot "$root" dpkg -s libjson-c5 >/dev/null 2>&1; then
    cp "$build"/var/cache/apt/archives/libjson-c5_*.deb "$root/tmp/"
    chroot "$root" sh -c 'dpkg -i /tmp/libjson-c5_*.deb && rm /tmp/libjson-c5_*.deb' >&2
fi
umount "$build/proc"
rm -rf --one-file-system "$build"
chroot "$root" ldconfig
# upstart is PID 1: /sbin/init (sysvinit's, moved aside) and upstart's
# telinit/shutdown/reboot/halt/poweroff/runlevel (installed over sysvinit's).
chroot "$root" dpkg-divert --local --rename --add /usr/sbin/init >&2 || true
ln -sf upstart "$root/usr/sbin/init"
# No system bus when upstart starts, and nothing here needs the bridges.
rm -f "$root"/etc/init/upstart-*-bridge.conf "$root"/etc/init/upstart-event-bridge.conf
# Ubuntu's mountall does not exist here: Debian's rcS.d scripts (kernel
# file systems, udev, checkroot, mountall, networking) do its work, in a job
# on `startup` that then emits mountall's events. rc-sysinit's own call of
# /etc/init.d/rcS becomes a no-op (as on Ubuntu, whose rcS.d is near empty).
cat > "$root/etc/init/mountall.conf" <<'JOB'
# umm VM test image: stands for Ubuntu's mountall (+ udev, networking).
description "file systems, udev and the network (Debian's rcS.d)"
start on startup
task
console output
emits virtual-filesystems local-filesystems remote-filesystems all-swaps filesystem static-network-up
script
    /etc/init.d/rc S || true
    for ev in virtual-filesystems local-filesystems remote-filesystems all-swaps filesystem static-network-up; do
        initctl emit --no-wait "$ev"
    done
end script
JOB
# /etc/init.d/rcS is an absolute link (/lib/init/rcS): replace the link,
# never write through it (it would resolve on the host).
rm -f "$root/etc/init.d/rcS"
cat > "$root/etc/init.d/rcS" <<'SH'
#!/bin/sh
# umm VM test image (upstart): rcS.d already ran in the mountall job.
exit 0
SH
chmod 0755 "$root/etc/init.d/rcS"
for tty in tty1 ttyS0; do
    cat > "$root/etc/init/getty-$tty.conf" <<JOB
description "getty on $tty"
start on stopped rc RUNLEVEL=[2345]
stop on runlevel [!2345]
respawn
exec /sbin/getty -8 -L 115200 $tty
JOB
done

rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root/usr/sbin/policy-rc.d"
umount "$root/proc"
chroot "$root" /usr/sbin/upstart --version > "$tmp/version"
date -u +%FT%TZ > "$tmp/ok"
mv -T "$tmp" "$out"
log "built $out ($(head -n1 "$out/version")) in $(( $(date +%s) - start )) s"
echo "$out"
