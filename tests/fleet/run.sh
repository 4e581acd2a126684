#!/bin/bash
# The fleet tests (nspawn nodes in a Consul cluster): part of the test command.
#   tests/fleet/run.sh [pytest args...]
# Needs the VM suite's base image (built here when missing), the umm package (scripts/deb.sh,
# on scripts/build-release.sh: the workspace and the static generator) and root. See docs/fleet-tests.md.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/../.."
tests/vm/build-base.sh >/dev/null
scripts/deb.sh   # the nodes get the package (vmlib.install_umm), built on scripts/build-release.sh
export CONSUL_BIN=${CONSUL_BIN:-$(scripts/install-consul.sh)}
# Every node is a systemd instance that takes inotify instances; with the 10-node cluster, the
# scenario node and the 3 Pacemaker nodes up at once, Debian's default of 128 per user runs out
# ("Failed to allocate manager object: Too many open files"). Raised for the host, never lowered.
if (( $(sysctl -n fs.inotify.max_user_instances) < 1024 )); then
    sysctl -qw fs.inotify.max_user_instances=1024
fi
pytest=(python3 -m pytest -p no:cacheprovider -v -rA)
if (( $# > 0 )) || [[ ${UMM_FLEET_JOBS:-2} == 1 ]]; then
    exec "${pytest[@]}" tests/fleet "$@"
fi
# Two at once: the single-node scenarios (no Consul) beside the cluster tests,
# which share one Consul cluster. Each has its own bridge and subnet; the
# scenarios' output is printed after the cluster's. UMM_FLEET_JOBS=1: one after the other.
log=$(mktemp /tmp/umm-fleet-scenarios.XXXXXX)
"${pytest[@]}" tests/fleet/test_scenarios_nspawn.py >"$log" 2>&1 &
scenarios=$!
rc=0
"${pytest[@]}" tests/fleet --ignore=tests/fleet/test_scenarios_nspawn.py || rc=$?
src=0
wait "$scenarios" || src=$?
echo; echo "==> the single-node scenarios (run beside the cluster tests)"
cat "$log"; rm -f "$log"
(( rc == 0 && src == 0 )) || { echo "fleet suite failed: cluster tests exit $rc, scenarios exit $src" >&2; exit 1; }
