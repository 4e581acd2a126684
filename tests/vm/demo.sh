#!/bin/bash
# The README's "run" command: boots a throwaway VM into maintenance mode,
# shows `umm status` from inside, resumes it with `umm off`, and shows the
# normal target and the workload running. Needs root (debootstrap, apt).
#
#   tests/vm/demo.sh
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/../.."
echo "==> Host packages and the cached base image (first run: a few minutes; then cached)"
tests/vm/build-base.sh >/dev/null
if [[ "${UMM_VM_NO_INSTALL:-}" != 1 ]]; then
    echo "==> Building the umm package: make deb (scripts/deb.sh; the demo VM installs it)"
    scripts/deb.sh
fi
exec python3 tests/vm/demo.py
