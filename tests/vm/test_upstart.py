"""umm on Upstart 1.13.2 as PID 1, booted for real (issue 16).

The image: tests/vm/build-upstart.sh (the sysvinit variant with upstart and
libnih built from ../shared/upstart), umm installed by scripts/install.sh, the
jobs of upstart/ copied to /etc/init/ as docs/init-systems.md says. One VM,
three boots shared by the issue's scenarios:

1. `init=/usr/sbin/umm-init umm=1` (the PID-1 pre-stage) -> MM: only the
   network, sshd and the getty; the runlevel (demo-app) not started;
   `umm status` names the upstart job; `umm off` resumes the runlevel in the
   same boot and returns only once it is up; rcS.d ran once.
2. `umm on -- CMD` reboots -> MM (requested, decided by the `umm` job: no
   pre-stage this time), CMD ran once; `umm off`.
3. `reboot_count = 0`, then a power cut while running normally -> the next
   boot is MM (reboot-loop); CMD did not run again.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

import vmlib
from test_initsystems import make_image, recorded, sh_ok

SHIM = "init=/usr/sbin/umm-init"
RCS_BANNER = "Using makefile-style concurrent boot in runlevel S"


@pytest.fixture(scope="session")
def upstart_image():
    out = subprocess.run([str(vmlib.VM_DIR / "build-upstart.sh")], check=True,
                         stdout=subprocess.PIPE, text=True).stdout.strip().splitlines()
    tree = vmlib.make_tree(Path(out[-1]), "upstart")
    for job in (tree / "usr/share/umm/upstart").iterdir():
        shutil.copy(job, tree / "etc/init" / job.name)
    img = make_image(tree, "upstart")
    subprocess.run(["rm", "-rf", "--one-file-system", str(tree)], check=True)
    return img


def assert_upstart_mm(vm, reason: str) -> None:
    assert "upstart" in vm.out("initctl version")
    assert recorded(vm) == f"maintenance:{reason}", vm.out("cat /run/umm/boot")
    jobs = vm.out("initctl list")
    assert "umm-maintenance start/running" in jobs, jobs
    assert "umm-getty start/running" in jobs, jobs
    assert "inet " in vm.out("ip -4 -o addr show dev eth0")
    assert sh_ok(vm, "pgrep -x sshd")
    time.sleep(5)  # give a wrongly started runlevel the chance to show
    assert not sh_ok(vm, "/etc/init.d/demo-app status"), "the runlevel's workload runs in MM"
    # `runlevel` prints "unknown" and exits 1 before the first runlevel.
    assert vm.ssh("runlevel", check=False).stdout.strip() == "unknown", "a runlevel started in MM"
    assert not sh_ok(vm, "pgrep -f '/etc/init.d/rc [2345]'"), "rc 2 runs in MM"
    assert "getty-tty1 stop/waiting" in vm.out("initctl list")
    text = vm.out("umm status")
    assert "umm.target" not in text and "upstart job umm-maintenance" in text, text


def umm_off(vm) -> float:
    boot = vm.boot_id()
    t0 = time.monotonic()
    r = vm.ssh("umm off", check=False)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stdout + r.stderr
    assert "(upstart)" in r.stdout and "sysvinit" not in r.stdout, r.stdout
    assert "the default runlevel is up" in r.stdout, r.stdout
    # It says "is up" only once the runlevel is up: nothing is waited for here.
    assert sh_ok(vm, "/etc/init.d/demo-app status"), r.stdout
    assert vm.out("runlevel").split()[-1] == "2"
    jobs = vm.out("initctl list")
    assert "umm-getty stop/waiting" in jobs and "getty-tty1 start/running" in jobs, jobs
    assert vm.boot_id() == boot, "resuming rebooted the guest"
    return took


def test_upstart_scenarios(base, upstart_image, request):
    vm = vmlib.VM(base, upstart_image, request.node.name)
    times = {}
    try:
        # 1. PID-1 pre-stage + umm=1
        t = time.monotonic()
        vm.start(f"{SHIM} umm=1")
        vm.wait_ssh()
        times["boot 1 to ssh"] = time.monotonic() - t
        assert vm.out("cat /proc/1/comm") in ("init", "upstart")
        assert "by=umm-init" in vm.out("cat /run/umm/decision")
        assert_upstart_mm(vm, "cmdline")
        assert "not an executable file" not in vm.console_text()
        times["umm off 1"] = umm_off(vm)
        time.sleep(5)
        assert vm.console_text().count(RCS_BANNER) == 1, "rcS.d ran again on resume"
        assert vm.out("runlevel").split()[-1] == "2"

        # 2. umm on -- CMD + reboot, no pre-stage
        t = time.monotonic()
        vm.reboot_via("umm on -- sh -c 'echo ran >> /root/mm-cmd'")
        vm.wait_ssh()
        times["umm on -> ssh in MM"] = time.monotonic() - t
        assert "by=umm-init" not in vm.ssh("cat /run/umm/decision", check=False).stdout
        assert_upstart_mm(vm, "requested")
        deadline = time.monotonic() + 60 * vmlib.SCALE
        while vm.ssh("cat /root/mm-cmd", check=False).stdout.strip() != "ran":
            assert time.monotonic() < deadline, "the scheduled command did not run in MM"
            time.sleep(2)
        times["umm off 2"] = umm_off(vm)
        assert vm.out("cat /root/mm-cmd") == "ran", "the scheduled command ran more than once"

        # 3. an unclean boot more than reboot_count = 0: a power cut now.
        vm.out("mkdir -p /etc/umm && printf 'reboot_count = 0\\n' > /etc/umm/umm.toml"
               " && chmod 644 /etc/umm/umm.toml && sync")
        vm.kill()
        t = time.monotonic()
        vm.start()
        vm.wait_ssh()
        times["boot 3 to ssh"] = time.monotonic() - t
        assert_upstart_mm(vm, "reboot-loop")
        st = vm.umm_status()
        assert (st["reason"], st["unclean_boots"]) == ("reboot-loop", 1), st
        assert vm.out("cat /root/mm-cmd") == "ran", "the scheduled command ran again"
    finally:
        print("timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()))
        vm.kill()
