#!/bin/bash
# The VM test suite: the README's test command runs this.
#
#   tests/vm/run.sh [pytest args...]      e.g. tests/vm/run.sh -k scenario -x
#
# Installs what it needs (apt: qemu, debootstrap, ssh, e2fsprogs; pip: pytest),
# builds or reuses the cached base image, builds the umm package (scripts/deb.sh, which runs
# scripts/build-release.sh: the workspace, the static generator; UMM_VM_DEB=FILE uses that
# package) and runs pytest on tests/vm. two VMs run at once by default (pytest-xdist, one
# per core: TCG guests are single-threaded); UMM_VM_JOBS=1 runs one at a time. See docs/vm-tests.md.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/../.."

say() { printf '\n==> %s\n' "$*"; }

say "base image (cached in ${UMM_VM_CACHE:-/var/cache/umm-vm})"
t0=$(date +%s)
tests/vm/build-base.sh >/dev/null
echo "base image ready in $(( $(date +%s) - t0 )) s"

need_py=(pytest)
jobs=${UMM_VM_JOBS:-2}
(( jobs > 1 )) && need_py+=(xdist)
for mod in "${need_py[@]}"; do
    if ! python3 -c "import $mod" 2>/dev/null; then
        pkg=pytest; [[ $mod == xdist ]] && pkg=pytest-xdist
        say "installing $pkg"
        if ! python3 -m pip install -q "$pkg"; then
            # Debian's python3 without pip, or an externally managed one.
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -q && apt-get install -y -q "python3-$pkg"
        fi
        python3 -c "import $mod"
    fi
done

if [[ "${UMM_VM_NO_INSTALL:-}" == 1 ]]; then
    say "UMM_VM_NO_INSTALL=1: the guest images get NO umm (harness development only)"
else
    command -v cargo >/dev/null || { echo "cargo not found: install a Rust toolchain first" >&2; exit 1; }
    # The guests get the package (dpkg -i): the VM suite proves the .deb.
    if [[ -z "${UMM_VM_DEB:-}" ]]; then
        say "make deb (scripts/deb.sh)"
        scripts/deb.sh
    fi
fi

args=()
(( jobs > 1 )) && args+=(-n "$jobs")
say "pytest tests/vm ${args[*]} $*  (console logs: ${UMM_VM_WORK:-tests/vm/.cache}/logs/<test>/console-<boot>.log)"
exec python3 -m pytest -p no:cacheprovider -v -ra "${args[@]}" tests/vm "$@"
