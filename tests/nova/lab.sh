#!/bin/bash
# Starts and stops the real Nova lab (docs/compute-host.md "Tests").
#
#   tests/nova/lab.sh start [N_COMPUTES]   build/reuse the cached chroot, start everything, wait
#                                          until every nova-compute is up; prints the env file
#   tests/nova/lab.sh stop                 stop every process it started, unmount, remove the run dir
#
# Everything listens on 127.0.0.1 only: MariaDB on a unix socket (no TCP),
# RabbitMQ + epmd + Erlang distribution, Placement, nova-api, and the
# Glance/Neutron stand-in (standin.py). Ports: UMM_NOVA_PORT_BASE (18700) + 69..96.
# The chroot is an overlay on the cached build (build-lab.sh), so a run never
# changes the cache; /proc, /sys, /dev are bind-mounted and unmounted on stop
# (and on a failed start).
# The computes are compute1..computeN (FakeDriver); compute-slow runs
# FakeLiveMigrateDriver (a live migration from it runs 5 s unless aborted or
# force-completed: the timeout and failure tests) and
# is meant to be kept disabled by the tests except when they use it.
#
#   tests/nova/lab.sh start-keystone       on a running lab: Debian's Keystone 22 and masakari-api
#                                          14, a second nova-api and Placement with
#                                          auth_strategy = keystone; prints the env file
#   tests/nova/lab.sh stop-keystone        stops those (stop does too)
# Keystone and Masakari run in a second overlay root ($RUN/ks/root) over the cached layer of
# build-keystone-layer.sh (on the lab's tree); the keystone nova-api and Placement run in the
# lab's own root (same database, same RabbitMQ). Ports: BASE + 55..62 (keystone_catalog.py
# registers the catalog). Only test_keystone.py starts them: the rest of the suite runs without.
set -euo pipefail

HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
RUN=${UMM_NOVA_RUN:-$HERE/.cache/run}
BASE=${UMM_NOVA_PORT_BASE:-18700}
P_EPMD=$((BASE + 69)) P_RABBIT=$((BASE + 72)) P_DIST=$((BASE + 73))
P_API=$((BASE + 74)) P_PLACEMENT=$((BASE + 78)) P_GLANCE=$((BASE + 92)) P_NEUTRON=$((BASE + 96))
P_KEYSTONE=$((BASE + 55)) P_API_KS=$((BASE + 56)) P_PLACEMENT_KS=$((BASE + 57)) P_MASAKARI=$((BASE + 58))
P_DEAD1=$((BASE + 61)) P_DEAD2=$((BASE + 62))   # catalog entries nothing listens on
IMAGE=6b8a0d7e-6c5b-4f39-9d1e-0a0b0c0d0e0f
ROOT="$RUN/root"
KS="$RUN/ks"
KS_ROOT="$KS/root"

log() { printf '[nova-lab %s] %s\n' "$(date -u +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

# daemon NAME CMD...: runs CMD in the chroot in its own session, pid in $RUN/pids/NAME
daemon() { daemon_in "$ROOT" "$@"; }
daemon_in() { # daemon_in ROOTDIR NAME CMD...
    local root=$1 name=$2; shift 2
    setsid chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@" \
        >"$RUN/logs/$name.log" 2>&1 </dev/null &
    echo $! >"$RUN/pids/$name"
}

wait_for() { # wait_for SECONDS WHAT CMD...
    local t=$1 what=$2; shift 2
    local end=$((SECONDS + t))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < end)) || die "$what not ready after ${t}s (logs: $RUN/logs)"
        sleep 0.5
    done
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

stop() {
    [[ -d "$RUN" ]] || return 0
    if [[ -d "$RUN/pids" ]]; then
        # computes and API first, the message bus and the database last
        local order=() f
        for f in "$RUN"/pids/*; do [[ -e "$f" ]] && order+=("$(basename "$f")"); done
        local first=() last=()
        for f in "${order[@]}"; do
            case $f in mariadb|rabbitmq|epmd|hold|hold-keystone) last+=("$f") ;; *) first+=("$f") ;; esac
        done
        kill_group "${first[@]}"
        kill_group "${last[@]}"
        rm -rf "$RUN/pids"
    fi
    unmount_root "$KS_ROOT"
    unmount_root "$ROOT"
    if findmnt -rn -o TARGET | grep -qF "$RUN/"; then
        die "still mounted below $RUN: not removing it"
    fi
    rm -rf --one-file-system "$RUN"
}

unmount_root() {
    local m
    for m in dev sys proc; do
        if mountpoint -q "$1/$m" 2>/dev/null; then umount "$1/$m"; fi
    done
    if mountpoint -q "$1" 2>/dev/null; then umount "$1"; fi
}

# kill_group NAME...: SIGTERM the process groups of these daemons, SIGKILL after 15 s
kill_group() {
    local f pid pids=()
    for f in "$@"; do
        pid=$(cat "$RUN/pids/$f" 2>/dev/null || true)
        [[ -n "$pid" ]] && kill -TERM -- "-$pid" 2>/dev/null && pids+=("$pid")
        rm -f "$RUN/pids/$f"
    done
    local end=$((SECONDS + 15))
    for pid in "${pids[@]}"; do
        while kill -0 -- "-$pid" 2>/dev/null && ((SECONDS < end)); do sleep 0.2; done
        kill -KILL -- "-$pid" 2>/dev/null || true
    done
}

write_configs() {
    local tu="rabbit://guest:guest@127.0.0.1:$P_RABBIT/"
    local sock=/run/mysqld/mysqld.sock
    db() { echo "mysql+pymysql://umm:umm@localhost/$1?unix_socket=$sock"; }
    cat >"$ROOT/etc/hosts" <<H
127.0.0.1	localhost
H
    local common
    common=$(cat <<C
[DEFAULT]
transport_url = $tu
my_ip = 127.0.0.1
report_interval = 5
service_down_time = 30
# a call to a dead nova-compute (the kill-the-target test) times out after this, not 60 s
rpc_response_timeout = 20
osapi_compute_listen = 127.0.0.1
osapi_compute_listen_port = $P_API
osapi_compute_workers = 2
enabled_apis = osapi_compute
use_stderr = true
[api]
auth_strategy = noauth2
[wsgi]
api_paste_config = /etc/nova/api-paste-lab.ini
[scheduler]
discover_hosts_in_cells_interval = 5
workers = 1
[conductor]
workers = 1
[quota]
instances = -1
cores = -1
ram = -1
[placement]
auth_type = admin_token
endpoint = http://127.0.0.1:$P_PLACEMENT
token = admin:admin
[neutron]
auth_type = admin_token
endpoint = http://127.0.0.1:$P_NEUTRON
token = admin:admin
endpoint_override = http://127.0.0.1:$P_NEUTRON
[glance]
endpoint_override = http://127.0.0.1:$P_GLANCE
[oslo_messaging_notifications]
driver = noop
[service_user]
send_service_user_token = false
[cinder]
os_region_name = RegionOne
C
)
    # DB options only for api/conductor/scheduler (nova-compute refuses DB access)
    { echo "$common"; cat <<C; } >"$ROOT/etc/nova/nova-lab.conf"
[oslo_concurrency]
lock_path = /var/lib/nova/tmp
[api_database]
connection = $(db nova_api)
[database]
connection = $(db nova)
C
    local h
    for h in "${COMPUTES[@]}"; do
        local drv=fake.FakeDriver
        [[ $h == compute-slow ]] && drv=fake.FakeLiveMigrateDriver
        { echo "$common" | sed "s|^\[DEFAULT\]|[DEFAULT]\nhost = $h\ncompute_driver = $drv\nstate_path = /var/lib/nova-$h|"
          printf '[oslo_concurrency]\nlock_path = /var/lib/nova-%s/tmp\n' "$h"; } >"$ROOT/etc/nova/nova-$h.conf"
        mkdir -p "$ROOT/var/lib/nova-$h/tmp"
    done
    mkdir -p "$ROOT/var/lib/nova/tmp"
    sed -e 's/ noauth2 osapi_compute_app_v21/ noauth2 ummtoken osapi_compute_app_v21/' \
        "$ROOT/etc/nova/api-paste.ini" >"$ROOT/etc/nova/api-paste-lab.ini"
    grep -q ' noauth2 ummtoken ' "$ROOT/etc/nova/api-paste-lab.ini" \
        || die "api-paste.ini has no noauth2 pipeline to extend"
    printf '\n[filter:ummtoken]\npaste.filter_factory = umm_lab_filter:filter_factory\n' \
        >>"$ROOT/etc/nova/api-paste-lab.ini"
    install -m 0644 "$HERE/lab/umm_lab_filter.py" "$ROOT/usr/lib/python3/dist-packages/umm_lab_filter.py"
    install -d "$ROOT/opt/lab"
    install -m 0644 "$HERE/lab/standin.py" "$HERE/lab/wsgi.py" "$ROOT/opt/lab/"
    cat >"$ROOT/etc/placement/placement.conf" <<C
[DEFAULT]
use_stderr = true
[api]
auth_strategy = noauth2
[placement_database]
connection = $(db placement)
C
}

start() {
    local n=${1:-2}
    ((n >= 1 && n <= 9)) || die "N_COMPUTES must be 1..9 (got $n)"
    COMPUTES=()
    local i
    for ((i = 1; i <= n; i++)); do COMPUTES+=("compute$i"); done
    COMPUTES+=(compute-slow)
    stop   # a previous lab in the same run dir
    local t0=$SECONDS
    local lab; lab=$("$HERE/build-lab.sh")
    log "cached chroot $lab (build/check: $((SECONDS - t0)) s)"
    mkdir -p "$RUN"/{upper,work,root,logs,pids}
    echo "$lab" >"$RUN/lab-dir"
    trap 'rc=$?; if ((rc)); then log "start failed: stopping"; stop || true; fi' EXIT
    # a shared lock on lab-HASH.lock keeps build-lab.sh from deleting the tree under us
    setsid flock -s "$lab.lock" sleep infinity </dev/null >/dev/null 2>&1 &
    echo $! >"$RUN/pids/hold"
    mount -t overlay overlay -o "lowerdir=$lab/rootfs,upperdir=$RUN/upper,workdir=$RUN/work" "$ROOT"
    local m
    for m in proc sys dev; do mount --bind "/$m" "$ROOT/$m"; done
    write_configs

    log "MariaDB (unix socket only), epmd + RabbitMQ on 127.0.0.1"
    install -d -o "$(in_root id -u mysql)" "$ROOT/run/mysqld"
    daemon mariadb mariadbd --user=mysql --skip-networking --socket=/run/mysqld/mysqld.sock \
        --datadir=/var/lib/mysql --skip-log-bin --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0
    daemon epmd epmd -address 127.0.0.1 -port "$P_EPMD"
    daemon rabbitmq env HOME=/var/lib/rabbitmq RABBITMQ_NODENAME=rabbit@localhost \
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$P_RABBIT" RABBITMQ_DIST_PORT="$P_DIST" \
        ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT="$P_EPMD" \
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
        RABBITMQ_LOG_BASE=/var/log/rabbitmq RABBITMQ_MNESIA_BASE=/var/lib/rabbitmq/mnesia \
        /usr/lib/rabbitmq/bin/rabbitmq-server
    wait_for 60 MariaDB test -S "$ROOT/run/mysqld/mysqld.sock"
    in_root mariadb --socket=/run/mysqld/mysqld.sock -e "
        CREATE USER IF NOT EXISTS 'umm'@'localhost' IDENTIFIED BY 'umm';
        CREATE DATABASE IF NOT EXISTS nova_api; CREATE DATABASE IF NOT EXISTS nova;
        CREATE DATABASE IF NOT EXISTS nova_cell0; CREATE DATABASE IF NOT EXISTS placement;
        GRANT ALL ON nova_api.* TO 'umm'@'localhost'; GRANT ALL ON nova.* TO 'umm'@'localhost';
        GRANT ALL ON nova_cell0.* TO 'umm'@'localhost'; GRANT ALL ON placement.* TO 'umm'@'localhost';"

    log "db sync (placement, nova_api, cells, nova)"
    in_root placement-manage db sync >"$RUN/logs/placement-sync.log" 2>&1 &
    local psync=$!
    local mc=(nova-manage --config-file /etc/nova/nova-lab.conf)
    in_root "${mc[@]}" api_db sync >"$RUN/logs/nova-sync.log" 2>&1
    in_root "${mc[@]}" cell_v2 map_cell0 \
        --database_connection "mysql+pymysql://umm:umm@localhost/nova_cell0?unix_socket=/run/mysqld/mysqld.sock" \
        >>"$RUN/logs/nova-sync.log" 2>&1
    wait_for 60 RabbitMQ port_open "$P_RABBIT"
    in_root "${mc[@]}" cell_v2 create_cell --name cell1 >>"$RUN/logs/nova-sync.log" 2>&1
    in_root "${mc[@]}" db sync >>"$RUN/logs/nova-sync.log" 2>&1
    wait $psync || die "placement db sync failed: $RUN/logs/placement-sync.log"

    log "Placement, Glance/Neutron stand-in, nova-api/conductor/scheduler"
    daemon standin python3 /opt/lab/standin.py "$P_GLANCE" "$P_NEUTRON" "$IMAGE"
    daemon placement python3 /opt/lab/wsgi.py "$P_PLACEMENT"
    local py='import sys; from nova.cmd.%s import main; sys.argv[0] = "nova-%s"; main()'
    local svc
    for svc in api conductor scheduler; do
        # shellcheck disable=SC2059
        daemon "nova-$svc" python3 -c "$(printf "$py" "$svc" "$svc")" --config-file /etc/nova/nova-lab.conf
    done
    for h in "${COMPUTES[@]}"; do
        daemon "nova-compute-$h" python3 -c "$(printf "$py" compute compute)" --config-file "/etc/nova/nova-$h.conf"
    done
    wait_for 120 nova-api curl -fsS -H 'X-Auth-Token: admin:admin' "http://127.0.0.1:$P_API/v2.1/"
    log "waiting for ${#COMPUTES[@]} computes to be up"
    local want=${#COMPUTES[@]}
    computes_up() {
        local up
        up=$(curl -fsS -H 'X-Auth-Token: admin:admin' -H 'X-OpenStack-Nova-API-Version: 2.88' \
            "http://127.0.0.1:$P_API/v2.1/os-services?binary=nova-compute" \
            | python3 -c 'import json,sys; print(sum(s["state"] == "up" for s in json.load(sys.stdin)["services"]))')
        ((up == want))
    }
    wait_for 180 "nova-compute x$want" computes_up
    # compute hosts must be mapped to cell1 too (the scheduler discovers them every 5 s)
    hosts_mapped() { in_root "${mc[@]}" cell_v2 list_hosts 2>/dev/null | grep -c ' compute' | grep -qx "$want"; }
    wait_for 60 "host mappings" hosts_mapped
    cat >"$RUN/env" <<ENV
NOVA_URL=http://127.0.0.1:$P_API/v2.1
NOVA_TOKEN=admin:admin
PLACEMENT_URL=http://127.0.0.1:$P_PLACEMENT
NOVA_IMAGE=$IMAGE
NOVA_COMPUTES=${COMPUTES[*]}
NOVA_LAB_RUN=$RUN
NOVA_LAB_ROOT=$ROOT
ENV
    trap - EXIT
    log "lab up in $((SECONDS - t0)) s: $RUN/env"
    echo "$RUN/env"
}

keystone_configs() {
    local tu="rabbit://guest:guest@127.0.0.1:$P_RABBIT/" ks="http://127.0.0.1:$P_KEYSTONE"
    local authtoken
    # the services validate tokens as the lab's admin (no service users: a test lab)
    authtoken=$(cat <<C
[keystone_authtoken]
www_authenticate_uri = $ks/v3
auth_url = $ks/v3
auth_type = password
username = admin
password = lab-admin-secret
project_name = admin
user_domain_name = Default
project_domain_name = Default
C
)
    # nova-api with Keystone: the lab's config, then this one (later files win)
    cat >"$ROOT/etc/nova/nova-ks.conf" <<C
[DEFAULT]
osapi_compute_listen_port = $P_API_KS
osapi_compute_workers = 1
[api]
auth_strategy = keystone
$authtoken
C
    install -d "$ROOT/etc/placement-ks"
    { sed 's/^auth_strategy = noauth2$/auth_strategy = keystone/' "$ROOT/etc/placement/placement.conf"
      echo "$authtoken"; } >"$ROOT/etc/placement-ks/placement.conf"
    grep -q '^auth_strategy = keystone$' "$ROOT/etc/placement-ks/placement.conf" \
        || die "placement.conf has no auth_strategy = noauth2 to replace"
    cat >"$KS_ROOT/etc/masakari/masakari.conf" <<C
[DEFAULT]
transport_url = $tu
auth_strategy = keystone
use_stderr = true
# Masakari checks a host's name against Nova (GET /os-services) through the catalog's
# compute "nova" publicURL, as this user
os_privileged_user_name = admin
os_privileged_user_password = lab-admin-secret
os_privileged_user_tenant = admin
os_privileged_user_auth_url = $ks/v3
os_user_domain_name = Default
os_project_domain_name = Default
os_region_name = RegionOne
nova_catalog_admin_info = compute:nova:publicURL
[database]
connection = sqlite:////var/lib/masakari/masakari.sqlite
[oslo_messaging_notifications]
driver = noop
$authtoken
C
    install -d "$KS_ROOT/opt/lab"
    install -m 0644 "$HERE/lab/wsgi.py" "$HERE/lab/masakari_lab.py" "$KS_ROOT/opt/lab/"
}

start_keystone() {
    [[ -f "$RUN/env" ]] || die "no lab runs in $RUN: 'lab.sh start' first"
    stop_keystone
    local t0=$SECONDS
    local layer; layer=$("$HERE/build-keystone-layer.sh" "$(cat "$RUN/lab-dir")")
    log "cached Keystone/Masakari layer $layer (build/check: $((SECONDS - t0)) s)"
    trap 'rc=$?; if ((rc)); then log "start-keystone failed: stopping it"; stop_keystone || true; fi' EXIT
    setsid flock -s "$layer.lock" sleep infinity </dev/null >/dev/null 2>&1 &
    echo $! >"$RUN/pids/hold-keystone"
    mkdir -p "$KS"/{upper,work,root}
    mount -t overlay overlay \
        -o "lowerdir=$layer/upper:$(cat "$RUN/lab-dir")/rootfs,upperdir=$KS/upper,workdir=$KS/work" "$KS_ROOT"
    local m
    for m in proc sys dev; do mount --bind "/$m" "$KS_ROOT/$m"; done
    cp "$ROOT/etc/hosts" "$KS_ROOT/etc/hosts"
    keystone_configs
    log "Keystone, masakari-api, nova-api and Placement with auth_strategy = keystone"
    daemon_in "$KS_ROOT" keystone python3 /opt/lab/wsgi.py "$P_KEYSTONE" keystone.server.wsgi:initialize_public_application single
    daemon_in "$KS_ROOT" masakari-api python3 /opt/lab/wsgi.py "$P_MASAKARI" masakari_lab:app single
    daemon nova-api-ks python3 -c 'import sys; from nova.cmd.api import main; sys.argv[0] = "nova-api"; main()' \
        --config-file /etc/nova/nova-lab.conf --config-file /etc/nova/nova-ks.conf
    daemon placement-ks env OS_PLACEMENT_CONFIG_DIR=/etc/placement-ks python3 /opt/lab/wsgi.py "$P_PLACEMENT_KS"
    python3 "$HERE/lab/keystone_catalog.py" "$P_KEYSTONE" "$P_API_KS" "$P_PLACEMENT_KS" "$P_MASAKARI" \
        "$P_DEAD1" "$P_DEAD2" >"$RUN/keystone-env.tmp" 2>"$RUN/logs/keystone-catalog.log" \
        || die "Keystone services not up: $(tail -n 3 "$RUN/logs/keystone-catalog.log") (logs: $RUN/logs)"
    mv "$RUN/keystone-env.tmp" "$RUN/keystone-env"
    trap - EXIT
    log "Keystone and Masakari up in $((SECONDS - t0)) s: $RUN/keystone-env"
    echo "$RUN/keystone-env"
}

stop_keystone() {
    kill_group keystone masakari-api nova-api-ks placement-ks hold-keystone
    unmount_root "$KS_ROOT"
    if findmnt -rn -o TARGET | grep -qF "$KS/"; then die "still mounted below $KS: not removing it"; fi
    rm -rf --one-file-system "$KS" "$RUN/keystone-env"
}

case ${1:-} in
start) shift; start "$@" ;;
stop) stop ;;
start-keystone) start_keystone ;;
stop-keystone) stop_keystone ;;
kill-compute) # kill-compute HOST: SIGKILL one nova-compute (failure tests)
    pid=$(cat "$RUN/pids/nova-compute-$2") && kill -KILL -- "-$pid" ;;
start-compute) # start-compute HOST: restart a killed nova-compute
    daemon "nova-compute-$2" python3 -c 'import sys; from nova.cmd.compute import main; sys.argv[0] = "nova-compute"; main()' \
        --config-file "/etc/nova/nova-$2.conf" ;;
*) echo "usage: $0 start [N_COMPUTES] | stop | start-keystone | stop-keystone | kill-compute HOST | start-compute HOST" >&2
   exit 2 ;;
esac
