#!/bin/bash
# Builds (once) the cached Debian 12 chroot that runs the real Nova lab
# (tests/nova/lab.sh start|stop; docs/compute-host.md "Tests").
#
#   tests/nova/build-lab.sh           -> prints the cache directory on stdout
#
# Cache: ${UMM_NOVA_CACHE:-/var/cache/umm-nova}/lab-<sha256 of this script, 16 hex>/
#   rootfs/   a debootstrap --variant=minbase bookworm tree with Debian's own
#             Nova 26 (Zed) api/conductor/scheduler + python3-nova (the computes
#             run from it with the fake driver), Placement 8, MariaDB, RabbitMQ
#   ok        written last: a directory without it is an interrupted build
# The build runs in lab-HASH.tmp, which is removed when the build fails; an
# exclusive flock on $CACHE/.lock makes concurrent builders wait and reuse.
# The lab's packages go into the chroot only; the host needs debootstrap.
set -euo pipefail

SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
CACHE=${UMM_NOVA_CACHE:-/var/cache/umm-nova}
MIRROR=${UMM_NOVA_MIRROR:-}
HASH=$(sha256sum "$SCRIPT" | cut -c1-16)
OUT="$CACHE/lab-$HASH"
TMP="$OUT.tmp"

log() { printf '[build-lab] %s\n' "$*" >&2; }

if ! command -v debootstrap >/dev/null; then
    log "installing host package: debootstrap"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends debootstrap >&2
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9

if [[ -f "$OUT/ok" ]]; then
    echo "$OUT"
    exit 0
fi

ROOT="$TMP/rootfs"
mounted=()
cleanup() {
    local rc=$?
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
    if ((rc != 0)); then
        log "build failed (exit $rc): removing $TMP"
        # only after the binds are gone: never delete through a mounted /proc or /dev
        if ! findmnt -rn -o TARGET | grep -qF "$TMP/"; then rm -rf --one-file-system "$TMP"; fi
    fi
}
trap cleanup EXIT

start=$(date +%s)
# older lab-* builds of other script versions: remove them unless a lab runs from one
for old in "$CACHE"/lab-*; do
    [[ -e "$old" && "$old" != "$OUT" && "$old" != *.lock ]] || continue
    if flock -xn "$old.lock" rm -rf --one-file-system "$old"; then rm -f "$old.lock"; log "removed stale $old"; fi
done
rm -rf --one-file-system "$TMP"
mkdir -p "$TMP"

if [[ -z "$MIRROR" ]]; then
    MIRROR=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
             | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -n1 | tr -d ' ' || true)
    [[ -n "$MIRROR" ]] || { log "no Debian mirror configured on the host: set UMM_NOVA_MIRROR"; exit 1; }
fi
log "debootstrap bookworm from $MIRROR"
debootstrap --variant=minbase --include=ca-certificates,procps,iproute2 bookworm "$ROOT" "$MIRROR" >&2

for m in proc sys dev; do
    mount --bind "/$m" "$ROOT/$m"
    mounted+=("$ROOT/$m")
done
# no service starts inside the chroot during the install
printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"
chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# the Debian OpenStack packages ask to configure a database, Keystone
# endpoints and RabbitMQ: the lab configures all of that itself (lab.sh)
chroot "$ROOT" debconf-set-selections <<'SEL'
nova-common nova/configure_db boolean false
placement-common placement/configure_db boolean false
nova-api nova/register-endpoint boolean false
placement-api placement/register-endpoint boolean false
nova-common nova/configure_ksat boolean false
nova-common nova/configure_rabbit boolean false
nova-common nova/neutron_url string
SEL
export DEBIAN_FRONTEND=noninteractive
log "apt install (Nova, Placement, MariaDB, RabbitMQ)"
chroot "$ROOT" apt-get update -q >&2
chroot "$ROOT" apt-get install -y -q --no-install-recommends \
    nova-api nova-conductor nova-scheduler python3-nova placement-api uwsgi-plugin-python3 \
    mariadb-server python3-pymysql rabbitmq-server python3-openstackclient python3-novaclient >&2
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb
rm -f "$ROOT/usr/sbin/policy-rc.d"
for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[$i]}"; done
mounted=()
date -u +%FT%TZ > "$TMP/ok"
mv -T "$TMP" "$OUT"
log "built $OUT in $(( $(date +%s) - start )) s"
echo "$OUT"
