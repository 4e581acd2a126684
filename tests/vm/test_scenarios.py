"""The umm scenarios of issue 4, on real boots of a Debian 12 guest.

Contract relied on (see docs/vm-tests.md, "What the scenarios rely on"):
  * install: scripts/install.sh --destdir DIR (layout in docs/install-layout.md)
  * MM = umm.target active, multi-user.target not active, sshd and network up
  * `umm status --json`: {"mode": disabled|normal|maintenance|entering|resumed,
    "reason": cmdline|requested|reboot-loop|null, "unclean_boots": int,
    "reboot_count": int, "command_result": null | {"exit_status": int, "output": str}}
  * `umm on [--no-reboot] [-- CMD ARGS]`, `umm off`, `umm off reboot`, `umm enable`, `umm disable`
  * /etc/umm/umm.toml keys reboot_count, counter_reset_time ("30s"), enabled
  * hooks: executables in /etc/umm/hooks/pre-on.d/ (root, 0755); a failing one stops `umm on`
  * kernel command line umm=1 / umm=0
"""

from __future__ import annotations

import re
import shlex
import time

import pytest

import vmlib

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
    r"umm.*\.service",
]

CRASH_UNIT = "umm-test-crash.service"  # installed (disabled) by build-base.sh


def write_config(vm: vmlib.VM, text: str) -> None:
    vm.out(f"mkdir -p /etc/umm && printf %s {shlex.quote(text)} > /etc/umm/umm.toml && sync")


def assert_normal(vm: vmlib.VM, modes: tuple[str, ...] = ("normal", "resumed")) -> dict:
    """A normal boot: multi-user.target and the workload up, umm.target not reached."""
    vm.wait_active("multi-user.target")
    vm.wait_active("demo-app.service", timeout=60)
    assert vm.is_active("umm.target") != "active", "umm.target active in a normal boot"
    st = vm.umm_status()
    assert st["mode"] in modes, st
    return st


def assert_mm(vm: vmlib.VM, reason: str) -> dict:
    """Maintenance mode: umm.target active, the normal target and the workload held
    back, only allow-listed services running, network and sshd up."""
    vm.wait_active("umm.target")
    vm.wait_boot_settled()  # no jobs left: nothing is still on its way up
    assert vm.is_active("multi-user.target") != "active", "multi-user.target active in MM"
    assert vm.is_active("demo-app.service") != "active", "the workload runs in MM"
    assert vm.is_active("ssh.service") == "active"
    assert "inet " in vm.out("ip -4 -o addr show dev eth0"), "eth0 has no IPv4 address in MM"
    assert "default" in vm.out("ip -4 route"), "no default route in MM"
    active = vm.active_units("service")
    unexpected = sorted(u for u in active if not any(re.fullmatch(p, u) for p in MM_ALLOWED_SERVICES))
    assert not unexpected, f"services active in MM beyond the allow-set: {unexpected}"
    st = vm.umm_status()
    assert st["mode"] == "maintenance", st
    assert st["reason"] == reason, st
    return st


def wait_command_result(vm: vmlib.VM, timeout: float = 120) -> dict:
    t0 = time.monotonic()
    while True:
        st = vm.umm_status()
        if st.get("command_result") is not None:
            return st
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"no command_result in umm status after {timeout} s: {st}")
        time.sleep(2)


def test_1_requested_mm_then_off(umm_vm):
    """`umm on` -> reboot -> MM (requested) -> `umm off` -> normal target, no reboot."""
    vm = umm_vm
    vm.boot()
    st = assert_normal(vm)
    assert st["reason"] is None, st
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


def test_2_kernel_cmdline(umm_vm):
    """umm=1 -> MM (cmdline); `umm off reboot` -> normal; umm=0 beats a pending request, which is kept."""
    vm = umm_vm
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


def crash_boots_until_ssh(vm: vmlib.VM, limit: int) -> int:
    """Boots (the guest is already started) until sshd answers; returns how many boots
    crashed (qemu exited before ssh) on the way. Fails after `limit` crashes."""
    crashes = 0
    while vm.wait_ssh_or_exit() == "exit":
        assert "umm-test-crash: sysrq reboot now" in vm.console_text(), \
            f"boot {vm.boots} ended without the crash unit firing (see {vm.console})"
        crashes += 1
        if crashes > limit:
            raise AssertionError(f"{crashes} crashed boots in a row and no MM (logs in {vm.dir})")
        vm.start()
    return crashes


def test_3_crash_loop_enters_mm_and_disable_stops_it(umm_vm):
    reboot_count = 1
    vm = umm_vm
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
        assert "umm-test-crash: sysrq reboot now" in vm.console_text()


def test_3b_clean_reboots_and_long_lived_boots_never_count(umm_vm):
    """reboot_count = 1: two short-lived clean reboots in a row, then two unclean
    reboots of boots that lived past counter_reset_time: every boot is normal."""
    reset_s = 20
    vm = umm_vm
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
        vm.reboot_via("echo b > /proc/sysrq-trigger")
        vm.wait_ssh()
        st = assert_normal(vm)  # unclean, but the boot had lived long enough
        assert st["unclean_boots"] == 0, st
    assert vm.boots == 5


def test_4_and_7_scheduled_command_runs_once_and_mm_survives_reboot(umm_vm):
    """4: `umm on -- CMD` runs CMD once in MM, its exit status and output in `umm status`.
    7: `systemctl reboot` in MM comes back to MM (the request holds), CMD does not run again."""
    vm = umm_vm
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


def test_5_failing_pre_on_hook_changes_nothing(umm_vm):
    vm = umm_vm
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


def test_6_corrupt_state_and_config_still_boot(umm_vm):
    vm = umm_vm
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
