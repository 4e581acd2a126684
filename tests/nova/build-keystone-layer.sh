#!/bin/bash
# Builds (once) the cached layer with Debian 12's own Keystone 22 and Masakari 14 (API) on top
# of the Nova lab's cached chroot (build-lab.sh), without touching the lab's tree itself: the
# Keystone and Masakari tests (tests/nova/test_keystone.py) mount it with `lab.sh start-keystone`.
#
#   tests/nova/build-keystone-layer.sh LAB_DIR   -> prints the layer directory on stdout
#
# Cache: ${UMM_NOVA_CACHE:-/var/cache/umm-nova}/keystone-<hash>/
#   upper/   an overlayfs upper dir over LAB_DIR/rootfs in which `apt-get install` of
#            PACKAGES ran (chroot), then, so that a start pays for none of it:
#            Keystone's sqlite database synced and bootstrapped (admin user, project and
#            role, region RegionOne; the catalog's endpoints are registered at start, with
#            the run's ports), its fernet and credential keys, and Masakari's sqlite
#            database synced (both in WAL mode)
#   ok       written last: a directory without it is an interrupted build
# The hash covers this script (packages, configuration) and the lab's directory name
# (itself the hash of build-lab.sh): either changing rebuilds, and layers of other hashes are
# removed unless a lab runs from one (lab.sh holds a shared flock on keystone-HASH.lock).
# An exclusive flock on $CACHE/.keystone.lock makes concurrent builders wait and reuse.
set -euo pipefail

SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
LAB=$(readlink -f "${1:?usage: $0 LAB_DIR}")
CACHE=${UMM_NOVA_CACHE:-/var/cache/umm-nova}
PACKAGES=(keystone masakari-api python3-masakari)
# the lab's admin (loopback-only test lab; tests/nova/lab.sh uses the same)
ADMIN_PASSWORD=lab-admin-secret
HASH=$( (sha256sum "$SCRIPT"; basename "$LAB") | sha256sum | cut -c1-16)
OUT="$CACHE/keystone-$HASH"
TMP="$OUT.tmp"

log() { printf '[build-keystone-layer] %s\n' "$*" >&2; }

[[ -f "$LAB/ok" ]] || { log "$LAB is not a finished lab build (no ok)"; exit 1; }
mkdir -p "$CACHE"
exec 9>"$CACHE/.keystone.lock"
flock 9
if [[ -f "$OUT/ok" ]]; then
    echo "$OUT"
    exit 0
fi
start=$(date +%s)
for old in "$CACHE"/keystone-*; do
    [[ -d "$old" && "$old" != "$OUT" ]] || continue
    if flock -xn "$old.lock" rm -rf --one-file-system "$old"; then rm -f "$old.lock"; log "removed stale $old"; fi
done
rm -rf --one-file-system "$TMP"
mkdir -p "$TMP/upper" "$TMP/work" "$TMP/root"
root="$TMP/root"
cleanup() {
    local rc=$? m
    for m in "$root/etc/resolv.conf" "$root/dev" "$root/sys" "$root/proc" "$root"; do
        mountpoint -q "$m" 2>/dev/null && umount -l "$m"
    done
    if ((rc != 0)); then
        log "build failed (exit $rc): removing $TMP"
        if ! findmnt -rn -o TARGET | grep -qF "$TMP/"; then rm -rf --one-file-system "$TMP"; fi
    fi
}
trap cleanup EXIT
mount -t overlay overlay -o "lowerdir=$LAB/rootfs,upperdir=$TMP/upper,workdir=$TMP/work" "$root"
for m in proc sys dev; do mount --bind "/$m" "$root/$m"; done
# the host's resolver for apt (bind-mounted: nothing of it stays in the layer)
touch "$root/etc/resolv.conf"
mount --bind /etc/resolv.conf "$root/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
# the packages offer to configure a database, an admin, endpoints, RabbitMQ: done below or
# by lab.sh instead
chroot "$root" debconf-set-selections <<'SEL'
keystone keystone/configure_db boolean false
keystone keystone/create-admin-tenant boolean false
keystone keystone/register-endpoint boolean false
masakari-common masakari/configure_db boolean false
masakari-common masakari/configure_rabbit boolean false
masakari-common masakari/configure_ksat boolean false
masakari-api masakari/configure_api-endpoint boolean false
SEL
export DEBIAN_FRONTEND=noninteractive
log "apt-get install ${PACKAGES[*]}"
chroot "$root" apt-get update -q >&2
chroot "$root" apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >&2
chroot "$root" apt-get clean
rm -f "$root/usr/sbin/policy-rc.d"
rm -rf "$root"/var/lib/apt/lists/*

in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }
log "Keystone: sqlite db_sync, fernet and credential keys, bootstrap"
cat >"$root/etc/keystone/keystone.conf" <<'C'
[DEFAULT]
use_stderr = true
[database]
connection = sqlite:////var/lib/keystone/keystone.db
[token]
provider = fernet
# 20 s, not 1 h: a drain in the tests outlives its token (umm authenticates again on 401)
expiration = 20
[fernet_tokens]
key_repository = /etc/keystone/fernet-keys
[credential]
key_repository = /etc/keystone/credential-keys
[identity]
# bcrypt's minimum: a password check costs milliseconds, not a quarter second
password_hash_rounds = 4
# Keystone's own cache, in its process (production uses memcached): validating a token took
# 1 s without it (each service's first use of a token), 0.02 s with it
[cache]
enabled = true
backend = dogpile.cache.memory
C
in_root keystone-manage db_sync >&2
# WAL: a reader does not block a writer (with the default journal, Keystone's second write
# of a run failed with "database is locked")
in_root sqlite3 /var/lib/keystone/keystone.db 'PRAGMA journal_mode=WAL;' >/dev/null
in_root keystone-manage fernet_setup --keystone-user root --keystone-group root >&2
in_root keystone-manage credential_setup --keystone-user root --keystone-group root >&2
in_root keystone-manage bootstrap --bootstrap-password "$ADMIN_PASSWORD" \
    --bootstrap-username admin --bootstrap-project-name admin --bootstrap-role-name admin \
    --bootstrap-service-name keystone --bootstrap-region-id RegionOne >&2
log "Masakari: sqlite db sync"
install -d "$root/var/lib/masakari"
cat >"$root/etc/masakari/masakari.conf" <<'C'
[database]
connection = sqlite:////var/lib/masakari/masakari.sqlite
C
in_root masakari-manage --config-file /etc/masakari/masakari.conf db sync >&2
in_root sqlite3 /var/lib/masakari/masakari.sqlite 'PRAGMA journal_mode=WAL;' >/dev/null
cleanup
trap - EXIT
rm -rf "$TMP/work" "$TMP/root"
date -u +%FT%TZ >"$TMP/ok"
mv -T "$TMP" "$OUT"
log "layer $OUT in $(( $(date +%s) - start )) s ($(du -sh "$OUT/upper" | cut -f1))"
echo "$OUT"
