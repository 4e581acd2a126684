#!/bin/sh
# Installs umm the way a package would (see docs/install-layout.md).
#   scripts/install.sh [--destdir DIR] [--bindir DIR_WITH_BUILT_BINARIES] [--no-enable]
# Builds nothing: run `cargo build --release --workspace` first (or pass --bindir).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
destdir=
bindir="$here/target/release"
enable=yes
while [ $# -gt 0 ]; do
    case "$1" in
        --destdir) destdir=$2; shift 2 ;;
        --bindir) bindir=$2; shift 2 ;;
        --no-enable) enable=no; shift ;;
        -h|--help) sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
for b in umm umm-generator; do
    [ -x "$bindir/$b" ] || { echo "install.sh: $bindir/$b not found: run 'cargo build --release --workspace' first" >&2; exit 1; }
done
d=${destdir%/}
install -d -m 0755 "$d/usr/sbin" "$d/usr/lib/systemd/system-generators" "$d/usr/lib/systemd/system" \
    "$d/usr/lib/umm" "$d/etc/umm/umm.toml.d" "$d/etc/umm/hooks/pre-on.d" "$d/etc/umm/hooks/pre-off.d" \
    "$d/var/lib/umm"
install -m 0755 "$bindir/umm" "$d/usr/sbin/umm"
install -m 0755 "$bindir/umm-generator" "$d/usr/lib/systemd/system-generators/umm-generator"
ln -sf ../lib/systemd/system-generators/umm-generator "$d/usr/sbin/umm-init"
if [ -x "$bindir/rebootmgr" ]; then
    install -m 0755 "$bindir/rebootmgr" "$d/usr/sbin/rebootmgr"
fi
for u in "$here"/units/*.service "$here"/units/*.target "$here"/units/*.timer; do
    [ -e "$u" ] || continue
    case "$(basename "$u")" in rebootmgr*) [ -x "$bindir/rebootmgr" ] || continue ;; esac
    install -m 0644 "$u" "$d/usr/lib/systemd/system/"
done
install -m 0644 "$here/dist/umm.toml" "$d/usr/lib/umm/umm.toml"
# Other init systems and boot loaders (docs/init-systems.md): shipped inert,
# switched on by umm-sysv-setup, by copying the upstart jobs, by dracut -f.
install -d -m 0755 "$d/usr/lib/umm/sysvinit" "$d/usr/share/umm/upstart" "$d/usr/lib/dracut/modules.d/90umm"
install -m 0755 "$here/initscripts/umm-pause" "$here/initscripts/umm.init" \
    "$here/initscripts/umm-sysv-setup" "$d/usr/lib/umm/sysvinit/"
install -m 0644 "$here"/upstart/* "$d/usr/share/umm/upstart/"
install -m 0755 "$here"/dracut/modules.d/90umm/* "$d/usr/lib/dracut/modules.d/90umm/"
if [ -d "$d/etc/grub.d" ]; then
    install -m 0755 "$here/grub.d/55_umm" "$d/etc/grub.d/55_umm"
fi
if [ "$enable" = yes ]; then
    if [ -n "$d" ]; then
        systemctl --root="$d" enable umm-boot.service umm-stable.timer umm-coordination.service >/dev/null 2>&1 \
            || { echo "install.sh: systemctl --root=$d enable failed" >&2; exit 1; }
    else
        systemctl enable umm-boot.service umm-stable.timer umm-coordination.service
    fi
fi
echo "umm installed into ${d:-/}"
