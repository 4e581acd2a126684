"""The assertions the umm scenarios share, for a qemu VM (vmlib.VM) and an nspawn
node (fleetlib.ScenarioNode) alike: both answer ssh/out/is_active/wait_active/
wait_boot_settled/active_units/umm_status, and `iface` names the node's network
interface (eth0 in a VM, host0 in a container). See docs/vm-tests.md,
"What the scenarios rely on".
"""

from __future__ import annotations

import re
import shlex
import time
from typing import Any

Machine = Any  # a vmlib.VM or a fleetlib.ScenarioNode

# Services that may be active in maintenance mode: network, sshd, D-Bus, consoles,
# systemd's own early services, umm itself. Anything else active there means MM
# started a workload it should have held back.
MM_ALLOWED_SERVICES = [
    r"ssh\.service",
    r"sshd\.service",
    r"ifup@.+\.service",
    r"ifupdown-pre\.service",
    r"ifupdown-wait-online\.service",
    r"networking\.service",
    r"dbus\.service",
    r"(serial-)?getty@.+\.service",
    r"systemd-.+\.service",
    r"user@\d+\.service",
    r"user-runtime-dir@\d+\.service",
    r"kmod-static-nodes\.service",
    r"keyboard-setup\.service",
    r"console-setup\.service",
    r"procps\.service",
    r"console-getty\.service",  # the console of an nspawn container
    r"umm.*\.service",
]

CRASH_UNIT = "umm-test-crash.service"  # installed (disabled) by build-base.sh


def write_config(vm: "Machine", text: str) -> None:
    vm.out(f"mkdir -p /etc/umm && printf %s {shlex.quote(text)} > /etc/umm/umm.toml && sync")


def assert_normal(vm: "Machine", modes: tuple[str, ...] = ("normal", "resumed")) -> dict:
    """A normal boot: multi-user.target and the workload up, umm.target not reached."""
    vm.wait_active("multi-user.target")
    vm.wait_active("demo-app.service", timeout=60)
    assert vm.is_active("umm.target") != "active", "umm.target active in a normal boot"
    st = vm.umm_status()
    assert st["mode"] in modes, st
    return st


def assert_mm(vm: "Machine", reason: str) -> dict:
    """Maintenance mode: umm.target active, the normal target and the workload held
    back, only allow-listed services running, network and sshd up."""
    vm.wait_active("umm.target")
    vm.wait_boot_settled()  # no jobs left: nothing is still on its way up
    assert vm.is_active("multi-user.target") != "active", "multi-user.target active in MM"
    assert vm.is_active("demo-app.service") != "active", "the workload runs in MM"
    assert vm.is_active("ssh.service") == "active"
    iface = getattr(vm, "iface", "eth0")
    assert "inet " in vm.out(f"ip -4 -o addr show dev {iface}"), f"{iface} has no IPv4 address in MM"
    assert "default" in vm.out("ip -4 route"), "no default route in MM"
    active = vm.active_units("service")
    unexpected = sorted(u for u in active if not any(re.fullmatch(p, u) for p in MM_ALLOWED_SERVICES))
    assert not unexpected, f"services active in MM beyond the allow-set: {unexpected}"
    st = vm.umm_status()
    assert st["mode"] == "maintenance", st
    assert st["reason"] == reason, st
    return st


def wait_command_result(vm: "Machine", timeout: float = 120) -> dict:
    t0 = time.monotonic()
    while True:
        st = vm.umm_status()
        if st.get("command_result") is not None:
            return st
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"no command_result in umm status after {timeout} s: {st}")
        time.sleep(2)
