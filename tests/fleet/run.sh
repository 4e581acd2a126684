#!/bin/bash
# The fleet tests (nspawn nodes in a Consul cluster): part of the test command.
#   tests/fleet/run.sh [pytest args...]
# Needs the VM suite's base image (built here when missing), a release build
# (scripts/build-release.sh: the workspace and the static generator) and root. See docs/fleet-tests.md.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/../.."
tests/vm/build-base.sh >/dev/null
scripts/build-release.sh
export CONSUL_BIN=${CONSUL_BIN:-$(scripts/install-consul.sh)}
exec python3 -m pytest -p no:cacheprovider -v -ra tests/fleet "$@"
