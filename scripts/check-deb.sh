#!/bin/bash
# Checks the package scripts/deb.sh built (run by scripts/test.sh after `make deb`):
#   1. lintian: no error and no warning (each accepted one is overridden, with its reason,
#      in packaging/deb/lintian-overrides)
#   2. the package is a copy of dist/ plus the binaries: every file that
#      `scripts/install.sh --destdir` installs is in it, with the same mode (and the same
#      content, binaries aside), and it ships nothing else but docs, man pages and completions
#   3. its control data: Depends computed, /etc/grub.d/55_umm a conffile, maintainer scripts
#      with the shared functions put in
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
deb=${1:-$(ls -t target/debian/umm_*.deb 2>/dev/null | head -n1)}
[ -f "$deb" ] || { echo "check-deb: no package: run 'make deb' first" >&2; exit 1; }
fail=0
bad() { echo "check-deb: $*" >&2; fail=1; }

echo "== lintian $deb"
lintian --info --fail-on error,warning "$deb" || bad "lintian reported errors or warnings (above)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -x "$deb" "$tmp/deb"
mkdir -p "$tmp/inst/etc/grub.d"
scripts/install.sh --destdir "$tmp/inst" --no-enable >/dev/null
(cd "$tmp/inst" && find . ! -type d | sort) > "$tmp/inst.list"
(cd "$tmp/deb" && find . ! -type d | sort) > "$tmp/deb.list"
while read -r f; do
    if [ ! -e "$tmp/deb/$f" ] && [ ! -L "$tmp/deb/$f" ]; then bad "$f: installed by install.sh, not in the package"; continue; fi
    m1=$(stat -c %a "$tmp/inst/$f"); m2=$(stat -c %a "$tmp/deb/$f")
    [ "$m1" = "$m2" ] || bad "$f: mode $m2 in the package, $m1 from install.sh"
    if [ -L "$tmp/inst/$f" ]; then
        [ "$(readlink "$tmp/inst/$f")" = "$(readlink "$tmp/deb/$f")" ] || bad "$f: link differs"
    else
        case "$f" in
            ./usr/sbin/*|./usr/lib/systemd/system-generators/*) ;;  # binaries: stripped again by cargo-deb
            *) cmp -s "$tmp/inst/$f" "$tmp/deb/$f" || bad "$f: differs from dist/" ;;
        esac
    fi
done < "$tmp/inst.list"
comm -13 "$tmp/inst.list" "$tmp/deb.list" | while read -r f; do
    case "$f" in
        ./usr/share/doc/umm/*|./usr/share/man/*|./usr/share/bash-completion/completions/*|\
        ./usr/share/zsh/vendor-completions/*|./usr/share/fish/vendor_completions.d/*|\
        ./usr/share/lintian/overrides/umm) ;;
        *) echo "$f" ;;
    esac
done > "$tmp/extra"
[ ! -s "$tmp/extra" ] || bad "in the package but not in dist/: $(tr '\n' ' ' < "$tmp/extra")"

dpkg-deb -f "$deb" Depends | grep -q 'libc6' || bad "Depends is not computed (no libc6)"
conffiles=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)
grep -qx /etc/grub.d/55_umm <<<"$conffiles" || bad "/etc/grub.d/55_umm is not a conffile"
for s in postinst postrm; do
    text=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO "./$s")
    grep -q '^umm_update_grub()' <<<"$text" || bad "$s lacks the shared functions"
    sh -n <<<"$text" || bad "$s: shell syntax"
done
[ "$fail" = 0 ] || exit 1
echo "check-deb: $deb: lintian clean, a copy of dist/ plus binaries ($(wc -l < "$tmp/deb.list") files)"
