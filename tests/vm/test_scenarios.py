"""The umm scenarios of issue 4, on real boots of a Debian 12 guest.

Contract relied on (see docs/vm-tests.md, "What the scenarios rely on"):
  * install: the package, dpkg -i in a chroot of the image tree (layout in docs/install-layout.md)
  * MM = umm.target active, multi-user.target not active, sshd and network up
  * `umm status --json`: {"mode": disabled|normal|maintenance|entering|resumed,
    "reason": cmdline|requested|reboot-loop|null, "unclean_boots": int,
    "reboot_count": int, "command_result": null | {"exit_status": int, "output": str}}
  * `umm on [--no-reboot] [-- CMD ARGS]`, `umm off`, `umm off reboot`, `umm enable`, `umm disable`
  * /etc/umm/umm.toml keys reboot_count, counter_reset_time ("30s"), enabled
  * hooks: executables in /etc/umm/hooks/pre-on.d/ (root, 0755); a failing one stops `umm on`
  * kernel command line umm=1 / umm=0

The other systemd scenarios (2-7) run in nspawn containers (tests/fleet/test_scenarios_nspawn.py):
they do not test the kernel. This one stays here as the proof that the real
kernel boot path (generator at early boot, /dev/kmsg logging, eth0 via DHCP) works.
"""

from __future__ import annotations

from scenariolib import assert_mm, assert_normal


def test_1_requested_mm_then_off(umm_vm):
    """`umm on` -> reboot -> MM (requested) -> `umm off` -> normal target, no reboot."""
    vm = umm_vm
    vm.boot()
    st = assert_normal(vm)
    assert st["reason"] is None, st
    # Under load the normal boot may still be starting units (a getty):
    # compare against the settled set.
    vm.wait_boot_settled()
    normal_services = vm.active_units("service")
    assert "demo-app.service" in normal_services

    vm.reboot_via("umm on")
    vm.wait_ssh()
    assert vm.boots == 2
    assert_mm(vm, "requested")
    mm_services = vm.active_units("service")
    # MM runs a strict subset of the normal boot's services (plus umm's own).
    extra = sorted(u for u in mm_services - normal_services if not u.startswith("umm"))
    assert not extra, f"services active in MM but not in a normal boot: {extra}"
    assert "demo-app.service" in normal_services - mm_services
    # The generator logged its decision through /dev/kmsg under its own name.
    gen_log = vm.out("journalctl -b -o cat -t umm-generator --no-pager")
    assert "maintenance mode (requested)" in gen_log, f"generator log: {gen_log!r}"
    boot_id = vm.boot_id()

    r = vm.ssh("umm off", check=False)
    assert r.returncode == 0, f"umm off failed: {r.stdout}{r.stderr}"
    vm.wait_active("multi-user.target")
    vm.wait_active("demo-app.service", timeout=60)
    assert vm.boot_id() == boot_id, "umm off rebooted the guest"
    assert vm.running() and vm.boots == 2
    st = vm.umm_status()
    assert st["mode"] in ("resumed", "normal"), st

    # The request is consumed: the next (clean) boot is normal.
    vm.reboot_via("systemctl reboot")
    vm.wait_ssh()
    st = assert_normal(vm)
    assert st["reason"] is None, st
