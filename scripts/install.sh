#!/bin/sh
# Installs umm the way a package would (see docs/install-layout.md).
#   scripts/install.sh [--destdir DIR] [--bindir DIR_WITH_BUILT_BINARIES] [--no-enable]
# Builds nothing: run scripts/build-release.sh (make build) first, or pass --bindir (a directory
# with all of umm, umm-generator and optionally rebootmgr). By default umm-generator is the static
# build from target/x86_64-unknown-linux-musl/release, the rest from target/release.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
destdir=
bindir="$here/target/release"
gendir="$here/target/x86_64-unknown-linux-musl/release"
enable=yes
while [ $# -gt 0 ]; do
    case "$1" in
        --destdir) destdir=$2; shift 2 ;;
        --bindir) bindir=$2; gendir=$2; shift 2 ;;
        --no-enable) enable=no; shift ;;
        -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
for b in "$bindir/umm" "$gendir/umm-generator"; do
    [ -x "$b" ] || { echo "install.sh: $b not found: run scripts/build-release.sh (make build) first" >&2; exit 1; }
done
d=${destdir%/}
case "$d" in ""|/*) ;; *) d="$PWD/$d" ;; esac
have_rebootmgr=no; [ -x "$bindir/rebootmgr" ] && have_rebootmgr=yes
# dist/ is the install tree (docs/install-layout.md): copy it, following its links into the
# top-level folders, plus the binaries. Mode 0755 for what is executable in the repo, 0644 else.
# Two exceptions, as before: rebootmgr's units and vendor config only with the rebootmgr binary, and
# /etc/grub.d/55_umm only where /etc/grub.d exists.
install -d -m 0755 "$d/usr/sbin" "$d/usr/lib/systemd/system-generators" \
    "$d/etc/umm/umm.toml.d" "$d/etc/umm/hooks/pre-on.d" "$d/etc/umm/hooks/pre-off.d" "$d/var/lib/umm"
install -m 0755 "$bindir/umm" "$d/usr/sbin/umm"
install -m 0755 "$gendir/umm-generator" "$d/usr/lib/systemd/system-generators/umm-generator"
if [ "$have_rebootmgr" = yes ]; then
    install -m 0755 "$bindir/rebootmgr" "$d/usr/sbin/rebootmgr"
fi
cd "$here/dist"
# Files (through the links); then links that point at a binary's install path (dangling in dist/).
find -L . -type f | sort | while read -r f; do
    f=${f#./}
    case "$f" in
        usr/lib/systemd/system/rebootmgr*|usr/lib/rebootmgr/*) [ "$have_rebootmgr" = yes ] || continue ;;
        etc/grub.d/*) [ -d "$d/etc/grub.d" ] || continue ;;
    esac
    mode=0644; [ -x "$f" ] && mode=0755
    install -d -m 0755 "$d/$(dirname "$f")"
    install -m "$mode" "$f" "$d/$f"
done
find -L . -type l | sort | while read -r l; do
    l=${l#./}
    install -d -m 0755 "$d/$(dirname "$l")"
    ln -sfn "$(readlink "$l")" "$d/$l"
done
cd "$here"
if [ "$enable" = yes ]; then
    # What is enabled is the preset's decision (dist/usr/lib/systemd/system-preset/50-umm.preset),
    # as in the package's postinst.
    units=$(cd "$d/usr/lib/systemd/system" && ls umm*.service umm*.timer rebootmgr*.timer 2>/dev/null | tr '\n' ' ')
    if [ -n "$d" ]; then
        # shellcheck disable=SC2086
        systemctl --root="$d" preset $units >/dev/null 2>&1 \
            || { echo "install.sh: systemctl --root=$d preset $units failed" >&2; exit 1; }
    else
        # shellcheck disable=SC2086
        systemctl preset $units
    fi
fi
echo "umm installed into ${d:-/}"
