"""Rolling reboots on nodes that really reboot: rebootmgr on four nodes of the
fleet (its 3 Consul servers and c1), each with a reboot required,
run as its timer would run it; every node reboots once (new boot id), never
two at once (from the nodes' own journals), each only after the previous one
is back and its checks pass."""

from __future__ import annotations

import base64
import json
import time

from rolloutlib import SETTLE, report, roll

STUCK = 5  # seconds: --stuck-after for the test (the default is 1800)


def test_rolling_reboot_one_at_a_time(fleet):
    """Scenario 1 on the first four nodes (3 servers, c1): the servers' quorum
    rule is part of it."""
    ro = roll(fleet, [fleet[n] for n in ("s1", "s2", "s3", "c1")])
    ro.check_each_rebooted_once()
    # Never two down at once: the down windows (from each node's own journal)
    # do not overlap, and each reboot starts after the previous node is back
    # and its post-boot phase (health checks passed, slot released) finished.
    last = ro.last_down()
    for (a, (_, a_up)), (b, (b_down, _)) in zip(last, last[1:]):
        assert b_down > a_up, f"{b} went down at {b_down} before {a} was back at {a_up}: {last}"
        assert b_down > ro.released[a], f"{b} went down at {b_down}, {a} released its slot at {ro.released[a]}"
    report("rolling reboot, one at a time", ro)


def test_a_node_that_never_comes_back_keeps_its_slot_until_released(fleet):
    """Fail-stop: c1 goes down for its reboot and stays down. Its slot stays
    held, so no other node reboots; `rebootmgr status` names it; after the
    deadline it is reported stuck (critical check, event, status with since
    when); an operator's `rebootmgr release --node c1` frees the slot and the
    others go on."""
    fleet.wait_cluster()
    c1, s1 = fleet["c1"], fleet["s1"]
    for n in (c1, s1):
        fleet.wait(f"{n.name}: config", lambda n=n: n.ssh("rebootmgr config --ensure", check=False).returncode == 0,
                   timeout=60)
        n.ssh("touch /var/run/reboot-required")
    s1_boot = s1.boot_id()
    c1.stay_down_after_reboot()
    r = c1.ssh(f"rebootmgr run --check-triggers --settle {SETTLE}", check=False, timeout=120)
    assert r.returncode in (0, 255), r.stdout + r.stderr  # 255: ssh lost the connection to the reboot
    fleet.wait("c1's container gone", lambda: c1.proc is not None and c1.proc.poll() is not None, timeout=60)
    assert c1.exits[-1] == 133, c1.exits

    # Nobody else reboots while c1's slot is held (here for a few timer runs).
    for _ in range(3):
        r = s1.ssh(f"rebootmgr run --check-triggers --settle {SETTLE}", check=False, timeout=120)
        assert r.returncode in (3, 4), r.stdout + r.stderr  # c1 left/failed, or the slot is c1's
        time.sleep(2)
    assert s1.boot_id() == s1_boot
    st = json.loads(s1.out("rebootmgr status --json"))
    assert "c1" in json.dumps(st.get("in_progress", st)), st
    assert st["stuck"] == [], st  # not before the deadline (default 1800 s)
    assert "rebootmgr-stuck" not in fleet.http("s1", "GET", "/v1/agent/checks")

    # Past the deadline (here STUCK s instead of 30 min) the slot is reported
    # stuck: a critical check on the observing node's agent, an event seen
    # cluster-wide, and `rebootmgr status` names the node and since when.
    time.sleep(STUCK)
    t_stuck = time.monotonic()
    r = s1.ssh(f"rebootmgr run --check-triggers --settle {SETTLE} --stuck-after {STUCK}", check=False, timeout=120)
    assert r.returncode in (3, 4), r.stdout + r.stderr
    assert "c1 has held the reboot slot" in r.stderr, r.stderr
    check = fleet.http("s1", "GET", "/v1/agent/checks")["rebootmgr-stuck"]
    assert check["Status"] == "critical" and "c1" in check["Output"], check
    crit = fleet.http("s2", "GET", "/v1/health/state/critical")
    assert any(ch["CheckID"] == "rebootmgr-stuck" and ch["Node"] == "s1" for ch in crit), crit
    st = json.loads(s1.out(f"rebootmgr status --json --stuck-after {STUCK}"))
    assert [x["node"] for x in st["stuck"]] == ["c1"], st
    marker = json.loads(base64.b64decode(fleet.http(
        "s2", "GET", "/v1/kv/service/rebootmgr/nodes/c1/reboot_in_progress")[0]["Value"]))
    assert st["stuck"][0]["since"] == marker["since"], (st, marker)
    text = s1.out(f"rebootmgr status --stuck-after {STUCK}")
    assert "stuck:" in text and "c1 has held the reboot slot" in text and "UTC" in text, text

    def event_seen() -> list:
        return [json.loads(base64.b64decode(e["Payload"])) for e in
                fleet.http("s2", "GET", "/v1/event/list?name=rebootmgr-stuck") or []]
    fleet.wait("the stuck event reached s2", lambda: any(
        p and p[0]["node"] == "c1" for p in event_seen()), timeout=30)
    n_events = len(event_seen())
    # A second run with the same stuck set fires no second event.
    s1.ssh(f"rebootmgr run --check-triggers --settle {SETTLE} --stuck-after {STUCK}", check=False, timeout=120)
    time.sleep(2)
    assert len(event_seen()) == n_events, event_seen()
    reported = time.monotonic() - t_stuck

    # The operator's override frees it; s1 then reboots, and its first run
    # after the release removes the stuck check.
    s1.ssh("rebootmgr release --node c1")
    fleet.wait("s1 rebooted after the release", lambda: (
        s1.ssh(f"rebootmgr run --check-triggers --settle {SETTLE} --wait-until-healthy 60",
               check=False, timeout=120).returncode in (0, 255, 3, 6) and s1.boot_id() != s1_boot), timeout=240)
    assert "rebootmgr-stuck" not in fleet.http("s1", "GET", "/v1/agent/checks")
    print(f"\nslot held by the dead node until release; reported stuck (check, event, status) in {reported:.1f} s;"
          f" s1 rebooted after the release (boots {s1.boots})")
