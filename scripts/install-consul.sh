#!/bin/sh
# Installs Consul 1.8.7 (Debian bullseye's `consul` package, a static Go binary)
# into a cache directory outside the repository and prints the binary's path.
# Bookworm has no consul, so apt gets a separate sources list and state dir:
# the system's own apt configuration and package state are left untouched.
#
#   UMM_CACHE   cache root (default /var/cache/umm); binary ends up in
#               $UMM_CACHE/consul/usr/bin/consul
#   DEBIAN_MIRROR  mirror URL (default: the first Debian mirror apt already uses)
set -eu

cache="${UMM_CACHE:-/var/cache/umm}/consul"
bin="$cache/usr/bin/consul"
if [ -x "$bin" ] && "$bin" version >/dev/null 2>&1; then
    echo "$bin"
    exit 0
fi

mirror="${DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
    mirror=$( (grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null || true) |
        awk '{print $2}' | grep -v security | head -n1)
fi
if [ -z "$mirror" ]; then
    mirror=$( (grep -h '^deb ' /etc/apt/sources.list 2>/dev/null || true) |
        awk '{for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' | grep -v security | head -n1)
fi
if [ -z "$mirror" ]; then
    echo "install-consul: no Debian mirror in /etc/apt/sources.list*: set DEBIAN_MIRROR=<the URL of a Debian mirror>" >&2
    exit 1
fi

keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$keyring" ] || { echo "install-consul: $keyring missing (apt-get install debian-archive-keyring)" >&2; exit 1; }

apt_dir="$cache/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$cache/deb"
echo "deb [signed-by=$keyring] $mirror bullseye main" >"$apt_dir/sources.list"

set -- -o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o Dir::Etc::sourceparts=/dev/null \
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache::archives=$apt_dir/archives" \
    -o "Dir::Cache::pkgcache=$apt_dir/pkgcache.bin" -o "Dir::Cache::srcpkgcache=$apt_dir/srcpkgcache.bin" \
    -o Debug::NoLocking=1 -o APT::Sandbox::User=root
apt-get -q "$@" update >&2
(cd "$cache/deb" && rm -f consul_*.deb && apt-get -q "$@" download consul=1.8.7* >&2)
deb=$(ls "$cache/deb"/consul_*.deb | head -n1)
dpkg -x "$deb" "$cache"
"$bin" version >&2
echo "$bin"
