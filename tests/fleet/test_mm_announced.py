"""Every maintenance mode is announced (issue 15, scenario 7): MM entered by
`umm=1` on the kernel command line (not through `umm on`) sets Consul node
maintenance with the reason and, with `[coordination]`, holds the group's
slot, so a peer's rebootmgr is held back; `umm off` releases both, and a
release that timed out (the node's checks failing at `healthy_timeout`) is
retried by umm-coordination.service until it succeeds."""

from __future__ import annotations

import base64
import json
import time

COORDINATION = """[coordination]
consul = "http://127.0.0.1:8500"
healthy_timeout = "3s"
"""


UNIT_LOG = "journalctl -b -u umm-coordination.service --no-pager"


def coordination_log(node) -> str:
    """umm-coordination.service's log and state in this boot, for a failure message."""
    return (node.ssh(UNIT_LOG, check=False).stdout + "\n"
            + node.ssh("systemctl status umm-coordination.service --no-pager; consul members", check=False).stdout)


def test_mm_by_kernel_command_line_is_announced_and_released(fleet):
    fleet.wait_cluster()
    c1, s2 = fleet["c1"], fleet["s2"]
    fleet.wait("s2: config", lambda: s2.ssh("rebootmgr config --ensure", check=False).returncode == 0, timeout=60)
    c1.ssh("mkdir -p /etc/umm/umm.toml.d && cat > /etc/umm/umm.toml.d/50-coordination.toml <<'EOF'\n"
           + COORDINATION + "EOF")
    t0 = time.monotonic()
    c1.set_boot_args("umm=1")
    c1.reboot()
    c1.set_boot_args()  # the boots after this one are normal
    assert c1.umm_status()["mode"] == "maintenance" and c1.umm_status()["reason"] == "cmdline"
    fleet.wait("c1 announced: node maintenance with the reason, the group's slot", lambda: (
        "umm=1 on the kernel command line" in (fleet.maintenance_notes("c1") or "")
        and "c1" in fleet.slot_holders()), timeout=90)
    announced = time.monotonic() - t0
    # A peer's rebootmgr sees the slot taken.
    r = s2.ssh("rebootmgr run --dry-run --settle 1", check=False)
    assert r.returncode == 4, r.stdout + r.stderr
    st = json.loads(s2.out("rebootmgr status --json"))
    assert any(p["node"] == "c1" and p["owner"] == "umm" for p in st["in_progress"]), st

    # umm off while c1's own check fails: the release times out (3 s) and the
    # unit fails; both stay in place ...
    c1.ssh("rm -f /etc/fleet-test/healthy")
    # Consul runs the check on its interval: `umm off` only after Consul has seen it fail.
    fleet.wait("c1's app check failing in Consul",
               lambda: fleet.app_check_status("c1") not in (None, "passing"), timeout=60)
    c1.ssh("umm off")
    try:
        fleet.wait("the release timed out", lambda: "checks still failing" in c1.ssh(
            UNIT_LOG, check=False).stdout, timeout=90)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{coordination_log(c1)}") from None
    assert fleet.maintenance_notes("c1") is not None and "c1" in fleet.slot_holders()
    # ... and it is retried: once the check passes, both are released without anyone's help.
    c1.ssh("touch /etc/fleet-test/healthy")
    t1 = time.monotonic()
    fleet.wait("c1 out of maintenance, slot free", lambda: (
        fleet.maintenance_notes("c1") is None and "c1" not in fleet.slot_holders()), timeout=90)
    retried = time.monotonic() - t1
    assert c1.ssh("test -e /var/lib/umm/coordination-leave", check=False).returncode != 0
    c1.ssh("rm -f /etc/umm/umm.toml.d/50-coordination.toml")
    print(f"\numm=1: announced {announced:.1f} s after the reboot began; release retried and done"
          f" {retried:.1f} s after the check passed")


def events(fleet, via: str, name: str) -> list:
    return [json.loads(base64.b64decode(e["Payload"])) for e in
            fleet.http(via, "GET", f"/v1/event/list?name={name}") or []]


def test_a_crash_loop_after_its_reboot_halts_the_rollout(fleet):
    """Scenario 6: c1 reboots through rebootmgr, then crash-loops (power cuts
    before its boot is stable) and lands in automatic MM (reboot loop). It
    keeps its slot, `rebootmgr status` shows it in maintenance after a reboot
    loop, an event fires, and s2 (a reboot required) does not reboot until the
    operator acts."""
    fleet.wait_cluster()
    c1, s2 = fleet["c1"], fleet["s2"]
    for n in (c1, s2):
        fleet.wait(f"{n.name}: config", lambda n=n: n.ssh("rebootmgr config --ensure", check=False).returncode == 0,
                   timeout=60)
    c1.ssh("mkdir -p /etc/umm/umm.toml.d && cat > /etc/umm/umm.toml.d/50-coordination.toml <<'EOF'\n"
           + COORDINATION + "EOF")
    s2_boot = s2.boot_id()
    c1.ssh("touch /var/run/reboot-required")
    s2.ssh("touch /var/run/reboot-required")
    t0 = time.monotonic()
    old = c1.boot_id()
    r = c1.ssh("rebootmgr run --check-triggers --settle 3", check=False, timeout=120)
    assert r.returncode in (0, 255), r.stdout + r.stderr
    c1.wait_boot(old)
    # The crash loop: three boots in a row die before they are stable
    # (reboot_count = 2: the third unclean boot in a row sends the next into MM).
    for _ in range(3):
        fleet.wait("c1's boot recorded", lambda: c1.ssh("test -e /run/umm/boot", check=False).returncode == 0,
                   timeout=60)
        c1.power_cut()
        c1.start()
        c1.wait_ssh()
    fleet.wait("c1's boot recorded", lambda: c1.ssh("test -e /run/umm/boot", check=False).returncode == 0,
               timeout=60)
    st = c1.umm_status()
    assert st["mode"] == "maintenance" and st["reason"] == "reboot-loop", st
    try:
        fleet.wait("c1 announced after the reboot loop", lambda: "after a reboot loop" in (
            fleet.maintenance_notes("c1") or ""), timeout=90)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{coordination_log(c1)}") from None
    landed = time.monotonic() - t0
    # It keeps rebootmgr's slot; s2 does not reboot.
    assert "c1" in fleet.slot_holders()
    for _ in range(2):
        r = s2.ssh("rebootmgr run --check-triggers --settle 3", check=False, timeout=120)
        assert r.returncode in (3, 4), r.stdout + r.stderr
    assert s2.boot_id() == s2_boot
    text = s2.out("rebootmgr status")
    assert "c1 (in maintenance after a reboot loop" in text, text
    fleet.wait("the umm-maintenance event reached s2", lambda: any(
        e["node"] == "c1" and "reboot loop" in e["reason"] for e in events(fleet, "s2", "umm-maintenance")),
        timeout=30)

    # The operator acts: `umm off`, then c1's rebootmgr finishes its post-boot phase.
    c1.ssh("umm off")
    r = c1.ssh("rebootmgr run --check-triggers --wait-until-healthy 60", check=False, timeout=120)
    assert r.returncode == 0 and "post-boot phase finished" in r.stdout, r.stdout + r.stderr
    assert "c1" not in fleet.slot_holders() and fleet.maintenance_notes("c1") is None
    r = s2.ssh("rebootmgr run --check-triggers --dry-run --settle 1", check=False, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    s2.ssh("rm -f /var/run/reboot-required")
    c1.ssh("rm -f /etc/umm/umm.toml.d/50-coordination.toml")
    print(f"\ncrash loop: c1 in MM (reboot loop) and announced {landed:.1f} s after its rebootmgr reboot;"
          " s2 held back until the operator's umm off")
