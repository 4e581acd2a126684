"""The systemd scenarios of issue 4 (2-7) on nspawn nodes: a real systemd boot of
the VM suite's Debian 12 image with this build's umm, in a container instead of a
qemu guest, because none of them tests the kernel (docs/fleet-tests.md, "Why
these run in containers"). The generator reads kernel-style args (umm=1, umm=0)
from the container's /proc/1/cmdline; a reboot ends systemd-nspawn with status
133 and the test boots the node again; a power cut SIGKILLs the container's init.
Every assertion is the VM version's (tests/vm/test_scenarios.py at the commit that
moved them); the shared ones are in tests/vm/scenariolib.py. Scenario 1 stays in
the VM suite as the proof of the real kernel boot path.
"""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest

import fleetlib
from scenariolib import CRASH_UNIT, assert_mm, assert_normal, wait_command_result, write_config


@pytest.fixture(scope="module")
def lab():
    """The scenario nodes' lower tree and bridge (no Consul), shared by the module."""
    # Its own bridge (10.213.220-249.0/24, apart from the cluster's 20-219), distinct per xdist worker.
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0)
    f = fleetlib.Fleet(f"scenarios-{os.getpid()}", servers=0, clients=0,
                       subnet=220 + (os.getpid() % 15) * 2 + worker % 2, layered_lower=True)
    try:
        yield f
    finally:
        f.close()
        subprocess.run(["rm", "-rf", "--one-file-system", str(f.work)], check=False)


@pytest.fixture
def node(request, lab):
    """A fresh node (its own overlay upper dir: nothing shared with other tests), not booted yet."""
    name = "sc-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[5:30].strip("-")
    n = lab.add_scenario_node(name)
    try:
        yield n
    finally:
        lab.remove_node(name)


def test_2_kernel_cmdline(node):
    """umm=1 -> MM (cmdline); `umm off reboot` -> normal; umm=0 beats a pending request, which is kept."""
    vm = node
    vm.start("umm=1")
    vm.wait_ssh()
    assert_mm(vm, "cmdline")

    vm.reboot_via("umm off reboot")  # the next boot has no umm=1
    vm.wait_ssh()
    assert_normal(vm)

    boot_id = vm.boot_id()
    r = vm.ssh("umm on --no-reboot", check=False)
    assert r.returncode == 0, f"umm on --no-reboot failed: {r.stdout}{r.stderr}"
    time.sleep(3)
    assert vm.running() and vm.boot_id() == boot_id, "umm on --no-reboot rebooted"

    assert vm.umm_status()["mode"] == "entering"

    vm.reboot_via("systemctl reboot", extra_args="umm=0")
    vm.wait_ssh()
    st = assert_normal(vm, modes=("entering",))  # a normal boot, the request still pending
    assert st.get("request") is not None, st

    vm.reboot_via("systemctl reboot")  # the request was kept: this boot is MM
    vm.wait_ssh()
    assert_mm(vm, "requested")


def crash_boots_until_ssh(vm: fleetlib.ScenarioNode, limit: int) -> int:
    """Boots (the node is already started) until sshd answers; returns how many boots
    crashed (the container rebooted before ssh) on the way. Fails after `limit` crashes."""
    crashes = 0
    while vm.wait_ssh_or_exit() == "exit":
        assert fleetlib.CRASH_MARK in vm.console_text(), \
            f"boot {vm.boots} ended without the crash unit firing (see {vm.console})"
        crashes += 1
        if crashes > limit:
            raise AssertionError(f"{crashes} crashed boots in a row and no MM (logs in {vm.dir})")
        vm.start()
    return crashes


def test_3_crash_loop_enters_mm_and_disable_stops_it(node):
    reboot_count = 1
    vm = node
    vm.boot()
    assert_normal(vm)
    write_config(vm, f'reboot_count = {reboot_count}\ncounter_reset_time = "10min"\n')
    vm.out(f"systemctl enable {CRASH_UNIT}")
    vm.reboot_via("systemctl reboot")  # clean: the count starts at zero

    # MM once there were MORE than reboot_count unclean boots in a row.
    crashes = crash_boots_until_ssh(vm, limit=reboot_count + 2)
    assert crashes == reboot_count + 1, f"MM after {crashes} unclean boots, reboot_count={reboot_count}"
    st = assert_mm(vm, "reboot-loop")
    assert vm.is_active(CRASH_UNIT) != "active"
    assert st["unclean_boots"] == crashes, st
    assert st["reboot_count"] == reboot_count, st

    # Disabled: the crash loop goes on and MM is never reached.
    r = vm.ssh("umm disable", check=False)
    assert r.returncode == 0, f"umm disable failed: {r.stdout}{r.stderr}"
    assert vm.umm_status()["mode"] in ("disabled", "maintenance"), "status after disable"
    vm.reboot_via("umm off")  # resuming starts the crash unit
    for i in range(reboot_count + 1):
        if i:
            vm.start()
        assert vm.wait_ssh_or_exit() == "exit", f"boot {vm.boots} answered ssh: MM reached while disabled"
        assert fleetlib.CRASH_MARK in vm.console_text()


def test_3b_clean_reboots_and_long_lived_boots_never_count(node):
    """reboot_count = 1: two short-lived clean reboots in a row, then two power cuts
    of boots that lived past counter_reset_time: every boot is normal."""
    reset_s = 20
    vm = node
    vm.boot()
    assert_normal(vm)
    write_config(vm, f'reboot_count = 1\ncounter_reset_time = "{reset_s}s"\n')
    for _ in range(2):
        vm.reboot_via("systemctl reboot")  # clean, at once: well before the reset time
        vm.wait_ssh()
        st = assert_normal(vm)
        assert st["unclean_boots"] == 0, st
        assert st["reboot_count"] == 1, st
    for _ in range(2):
        # counter_reset_time runs from the start of normal operation (multi-user.target).
        stable_at = vm.active_enter_s("multi-user.target") + reset_s + 5
        while vm.uptime() < stable_at:
            time.sleep(2)
        vm.power_cut_and_boot()  # the VM test's sysrq b: no shutdown at all
        vm.wait_ssh()
        st = assert_normal(vm)  # unclean, but the boot had lived long enough
        assert st["unclean_boots"] == 0, st
    assert vm.boots == 5


def test_4_and_7_scheduled_command_runs_once_and_mm_survives_reboot(node):
    """4: `umm on -- CMD` runs CMD once in MM, its exit status and output in `umm status`.
    7: `systemctl reboot` in MM comes back to MM (the request holds), CMD does not run again."""
    vm = node
    vm.boot()
    assert_normal(vm)
    # The command, plus output and a non-zero exit so both are shown to be captured.
    vm.reboot_via("umm on -- sh -c 'echo done >> /root/mm-proof; echo proof-output; exit 3'")
    vm.wait_ssh()
    assert_mm(vm, "requested")
    st = wait_command_result(vm)
    res = st["command_result"]
    assert res["exit_status"] == 3, st
    assert "proof-output" in res["output"], st
    assert vm.out("cat /root/mm-proof") == "done"

    vm.reboot_via("systemctl reboot")
    vm.wait_ssh()
    assert vm.boots == 3
    assert_mm(vm, "requested")
    time.sleep(5)
    assert vm.out("cat /root/mm-proof") == "done", "the scheduled command ran more than once"
    st = vm.umm_status()
    assert st["command_result"] is not None and st["command_result"]["exit_status"] == 3, st

    r = vm.ssh("umm off", check=False)
    assert r.returncode == 0, f"umm off failed: {r.stdout}{r.stderr}"
    vm.wait_active("multi-user.target")
    vm.wait_active("demo-app.service", timeout=60)


def test_5_failing_pre_on_hook_changes_nothing(node):
    vm = node
    vm.boot()
    assert_normal(vm)
    hooks = "/etc/umm/hooks/pre-on.d"
    vm.out(f"mkdir -p {hooks} && printf '#!/bin/sh\\necho refused-by-hook >&2\\nexit 1\\n' > {hooks}/10-refuse "
           f"&& chmod 0755 {hooks}/10-refuse && chown root:root {hooks}/10-refuse")
    snapshot = "find /var/lib/umm /etc/umm -type f -exec sha256sum {} + 2>/dev/null | sort; ls -l --time-style=+%s /run/umm 2>/dev/null || true"
    before_files = vm.out(snapshot)
    before = vm.umm_status()
    boot_id = vm.boot_id()

    r = vm.ssh("umm on", check=False, timeout=120)
    assert r.returncode != 0, f"umm on succeeded despite a failing pre-on hook: {r.stdout}{r.stderr}"
    time.sleep(5)
    assert vm.running(), "the guest rebooted despite the failing hook"
    assert vm.boot_id() == boot_id
    assert vm.out(snapshot) == before_files, "umm on changed state/config files although a hook failed"
    after = vm.umm_status()
    for k in ("mode", "reason", "command_result", "unclean_boots"):
        assert after.get(k) == before.get(k), (k, before, after)
    assert vm.is_active("multi-user.target") == "active"
    assert vm.is_active("demo-app.service") == "active"

    # The hooks do run: with a passing hook instead, umm on goes ahead.
    vm.out(f"rm {hooks}/10-refuse && printf '#!/bin/sh\\ntouch /root/pre-on-hook-ran\\n' > {hooks}/10-ok "
           f"&& chmod 0755 {hooks}/10-ok")
    vm.reboot_via("umm on")
    vm.wait_ssh()
    assert_mm(vm, "requested")
    assert vm.ssh("test -e /root/pre-on-hook-ran", check=False).returncode == 0, "pre-on hook did not run"


def test_6_corrupt_state_and_config_still_boot(node):
    vm = node
    vm.boot()
    assert_normal(vm)
    vm.out("mkdir -p /var/lib/umm /etc/umm && printf '\\000\\377garbage{{{\\n' > /var/lib/umm/state "
           "&& printf 'reboot_count = \"many\\n[[[ not toml\\n' > /etc/umm/umm.toml && sync")
    vm.reboot_via("systemctl reboot")
    vm.wait_ssh()
    assert_normal(vm)
    r = vm.ssh("umm status", check=False)
    text = (r.stdout + r.stderr).lower()
    assert "state" in text and "umm.toml" in text, f"umm status does not report the corrupt files:\n{text}"
    st = vm.umm_status()  # still a JSON object, listing the problems
    problems = " ".join(p.get("message", "") for p in st.get("problems", []))
    assert "state" in problems and "config" in problems, st
    assert st["mode"] in ("normal", "resumed"), st


# From tests/vm/test_no_dbus.py: a systemd boot without a D-Bus daemon needs no kernel of its own.
def test_mm_without_dbus_resumes_through_systemctl(node):
    """Maintenance mode on a node without a D-Bus daemon: `umm off` must still resume
    the boot. zbus cannot use PID 1's private socket (see src/systemd.rs), so umm falls
    back to systemctl there; this boots that path for real."""
    vm = node
    vm.start()
    vm.wait_ssh()
    # No bus daemon at all from the next boot on.
    vm.out("systemctl mask dbus.socket dbus.service && sync")
    vm.reboot_via("umm on")
    vm.wait_ssh()
    assert_mm(vm, "requested")
    assert vm.is_active("dbus.service") != "active", "dbus runs although masked"
    r = vm.ssh("umm off", check=False)
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"umm off failed without D-Bus:\n{out}"
    assert "systemctl" in out, f"expected the systemctl fallback to be reported:\n{out}"
    # Same checks as scenario 1's resume: the normal targets and the workload come up
    # in this boot (umm.target, once started, stays active as a target).
    vm.wait_active("multi-user.target")
    vm.wait_active("demo-app.service", timeout=60)
    assert vm.boots == 2, "umm off rebooted the node"
    st = vm.umm_status()
    assert st["mode"] == "resumed", st
