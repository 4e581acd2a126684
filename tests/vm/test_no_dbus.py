"""Maintenance mode on a node without a D-Bus daemon: `umm off` must still resume
the boot. zbus cannot use PID 1's private socket (see src/systemd.rs), so umm falls
back to systemctl there; this boots that path for real."""

from __future__ import annotations

from test_scenarios import assert_mm


def test_mm_without_dbus_resumes_through_systemctl(umm_vm):
    vm = umm_vm
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
    assert vm.boots == 2, "umm off rebooted the guest"
    st = vm.umm_status()
    assert st["mode"] == "resumed", st
