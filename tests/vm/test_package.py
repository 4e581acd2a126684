"""The package's life on one running guest (issue 13): install -> maintenance-mode cycle ->
upgrade to a rebuilt package with a bumped version *while in maintenance mode* -> umm off ->
remove -> purge, and the system is as it was before the install.

The guest starts from the plain image (no umm) with the two packages copied to /root/debs/;
every step is the real dpkg on the running system, maintainer scripts and all (systemd
running: daemon-reload, preset, tmpfiles.d). The base image has no GRUB and no dracut, so
the boot-menu and initramfs steps of the scripts are skipped there (`scripts/check-deb.sh`
checks the scripts hold them; the GRUB and dracut VM variants do not run this cycle).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

import vmlib
from test_scenarios import assert_mm

UNITS = ["umm-boot.service", "umm-stable.timer", "umm-coordination.service", "umm.target",
         "rebootmgr.timer", "rebootmgr.service"]

# What the snapshot of "the system" leaves out: files dpkg, apt, systemd and the journal
# change by themselves whatever is installed.
SNAPSHOT = (
    "find /etc /usr /var/lib -xdev "
    r"\( -path /var/lib/dpkg -o -path /var/lib/apt -o -path /var/lib/systemd "
    r"-o -path /etc/ld.so.cache -o -path /var/lib/dhcp -o -path /etc/machine-id \) -prune "
    r"-o -printf '%M %u %p -> %l\n' 2>/dev/null | sort"
)


@pytest.fixture(scope="session")
def package_image(base):
    """The plain base with this build's package and a rebuild of it with a bumped version
    in /root/debs/ (not installed)."""
    deb = vmlib.deb_path()
    version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], check=True,
                             stdout=subprocess.PIPE, text=True).stdout.strip()
    bumped = f"{version}+vmtest1"
    out = vmlib.WORK / "debs"
    out.mkdir(parents=True, exist_ok=True)
    for f in out.glob("*.deb"):
        f.unlink()
    keep = out / f"this-{deb.name}"  # (a cargo-deb run may clean target/debian/)
    shutil.copy(deb, keep)
    r = subprocess.run([str(vmlib.REPO / "scripts/deb.sh"), "--deb-version", bumped, "--output", str(out)],
                       cwd=vmlib.REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise vmlib.VMError(f"scripts/deb.sh --deb-version {bumped} failed:\n{r.stdout}")
    (new,) = out.glob(f"umm_{bumped}_*.deb")
    return vmlib.build_image(base, "package", install=False, extra={"root/debs/old.deb": keep,
                                                                   "root/debs/new.deb": new}), version, bumped


def installed_version(vm: vmlib.VM) -> str:
    """dpkg's state of umm and its version: "installed 0.1.0", "config-files 0.1.0", or ""."""
    return vm.out("dpkg-query -W -f='${db:Status-Status} ${Version}' umm 2>/dev/null || true")


def test_install_mm_upgrade_in_mm_remove_purge(package_image, make_vm):
    image, version, bumped = package_image
    vm = make_vm(image)
    vm.boot()
    before = vm.out(SNAPSHOT, timeout=300)
    assert installed_version(vm) == "", "umm installed before the test installed it"

    # Install: the preset enables the boot units, rebootmgr stays off.
    vm.out("dpkg -i /root/debs/old.deb")
    assert installed_version(vm) == f"installed {version}"
    enabled = {u: vm.ssh(f"systemctl is-enabled {u}", check=False).stdout.strip() for u in UNITS}
    assert enabled == {"umm-boot.service": "enabled", "umm-stable.timer": "enabled",
                       "umm-coordination.service": "enabled", "umm.target": "static",
                       "rebootmgr.timer": "disabled", "rebootmgr.service": "static"}, enabled
    assert vm.out("stat -c '%a %U' /run/umm /var/lib/umm") == "755 root\n755 root"
    assert vm.out("umm --version").startswith(f"umm {version.split('+')[0]}")
    vm.out("test -f /usr/share/man/man8/umm.8.gz && test -f /usr/share/bash-completion/completions/umm")
    # The hardened unit still does its job (nothing to release: exits 0).
    vm.out("systemctl start umm-coordination.service")
    assert vm.is_active("umm-coordination.service") != "failed"

    # A maintenance-mode cycle with the packaged units.
    vm.reboot_via("umm on")
    vm.wait_ssh()
    st = assert_mm(vm, "requested")
    request = st["request"]
    assert request is not None, st

    # Upgrade while in MM: still MM, same request, nothing restarted into the normal target.
    vm.out("dpkg -i /root/debs/new.deb")
    assert installed_version(vm) == f"installed {bumped}"
    st = assert_mm(vm, "requested")
    assert st["request"] == request, st
    assert vm.is_active("multi-user.target") != "active"

    # Removing umm while in MM is refused (there would be no `umm off`).
    r = vm.ssh("dpkg -r umm", check=False)
    assert r.returncode != 0 and "maintenance mode" in (r.stdout + r.stderr), r
    assert installed_version(vm) == f"installed {bumped}"

    boot_id = vm.boot_id()
    vm.out("umm off", timeout=900)  # resumes this boot (umm.target stays active in it)
    vm.wait_active("multi-user.target")
    vm.wait_active("demo-app.service", timeout=60)
    assert vm.boot_id() == boot_id and vm.umm_status()["mode"] in ("resumed", "normal")

    # Remove: binaries and units go, config, state and enablement stay.
    vm.out("printf 'reboot_count = 3\\n' > /etc/umm/umm.toml")
    vm.out("dpkg -r umm")
    assert installed_version(vm) == f"config-files {bumped}", installed_version(vm)
    gone = vm.out("for f in /usr/sbin/umm /usr/sbin/rebootmgr /usr/lib/systemd/system-generators/umm-generator "
                  "/usr/lib/systemd/system/umm-boot.service; do [ -e $f ] && echo $f; done; true")
    assert gone == "", gone
    assert vm.out("cat /etc/umm/umm.toml; test -f /var/lib/umm/state && echo state") == "reboot_count = 3\nstate"

    # Purge: config, state and enable links go; the system is as before the install.
    vm.out("dpkg -P umm")
    assert installed_version(vm) == ""
    after = vm.out(SNAPSHOT, timeout=300)
    diff = sorted(set(before.splitlines()) ^ set(after.splitlines()))
    assert not diff, "purge left the system different from before the install:\n" + "\n".join(diff)

    # And it boots normally without umm: no generator, no umm unit loaded.
    vm.reboot_via("systemctl reboot")
    vm.wait_ssh()
    vm.wait_active("multi-user.target")
    assert vm.out("ls /run/systemd/generator*/ 2>/dev/null | grep -c umm || true") == "0"
    assert vm.out("systemctl list-units --all --no-legend 'umm*' 'rebootmgr*' | wc -l") == "0"
