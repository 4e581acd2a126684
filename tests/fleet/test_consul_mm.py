"""Maintenance mode seen from a real Consul cluster (issue: a node in MM must
stay in the cluster): the Consul agent is kept in MM, so the node stays
`alive` with its `_node_maintenance` check critical, and `umm off` leaves it
alive and out of maintenance."""

from __future__ import annotations

import base64
import json
import time

COORDINATION = """[coordination]
consul = "http://127.0.0.1:8500"
healthy_timeout = "2min"
"""


def node_checks(fleet, via: str, node: str) -> dict[str, str]:
    return {c["CheckID"]: c["Status"] for c in fleet.http(via, "GET", f"/v1/health/node/{node}")}


def lock_holders(fleet, via: str) -> list:
    """Slot holders in any group's semaphore, and nodes with a reboot marker."""
    kv = fleet.http(via, "GET", "/v1/kv/service/rebootmgr/?recurse=true") or []
    out = []
    for e in kv:
        value = base64.b64decode(e["Value"] or "").decode()
        if e["Key"].endswith("/.lock"):
            out += list(json.loads(value).get("Holders") or {})
        elif "reboot_in_progress" in e["Key"]:
            out.append(e["Key"])
    return out


def test_a_server_in_maintenance_mode_stays_alive_in_the_cluster(fleet):
    s2 = fleet["s2"]
    t0 = time.monotonic()
    s2.ssh("mkdir -p /etc/umm/umm.toml.d && cat > /etc/umm/umm.toml.d/50-coordination.toml <<'EOF'\n"
           + COORDINATION + "EOF")
    old = s2.boot_id()
    # `umm on` takes the slot and node maintenance, then reboots into MM.
    r = s2.ssh("umm on", check=False, timeout=60)
    assert "took a reboot slot" in r.stdout, r.stdout + r.stderr
    s2.wait_boot(old)
    st = s2.umm_status()
    assert st["mode"] == "maintenance", st
    # sshd answers before the paused boot has reached umm.target: wait for it.
    s2.wait_active("umm.target", timeout=60)
    assert s2.is_active("demo-app.service") != "active", "the workload must not start in MM"
    # The agent was kept: up inside the node, alive in the cluster's view.
    s2.wait_active("consul.service")
    fleet.wait("s2 alive as seen by s1 and c1", lambda: (
        fleet.members("s1").get("s2") == 1 and fleet.members("c1").get("s2") == 1))
    fleet.wait("s2 still a Raft voter", lambda: any(
        s["Node"] == "s2" and s["Voter"]
        for s in fleet.http("s1", "GET", "/v1/operator/raft/configuration")["Servers"]))
    fleet.wait("s2 in node maintenance (critical) in the catalog", lambda: (
        node_checks(fleet, "s1", "s2").get("_node_maintenance") == "critical"
        and node_checks(fleet, "s1", "s2").get("serfHealth") == "passing"))
    assert lock_holders(fleet, "s1"), "umm on took a slot"
    print(f"MM reached and seen by the cluster after {time.monotonic() - t0:.1f} s")

    # umm off resumes the boot; umm-coordination.service ends node maintenance
    # once the node's checks pass, and frees the slot.
    s2.ssh("umm off")
    s2.wait_active("multi-user.target")
    s2.wait_active("demo-app.service")
    fleet.wait("s2 out of node maintenance", lambda: "_node_maintenance" not in node_checks(fleet, "s1", "s2"),
               timeout=150)
    assert fleet.members("s1").get("s2") == 1
    fleet.wait("slot released", lambda: not lock_holders(fleet, "s1"))
    assert s2.umm_status()["mode"] in ("resumed", "normal")
    print(f"MM left, node out of maintenance after {time.monotonic() - t0:.1f} s")


def test_keep_if_enabled_empty_lets_the_agent_go(fleet):
    """The negative control: with `keep_if_enabled = []` the agent is not kept,
    and the cluster loses sight of the node for the length of MM."""
    fleet.wait_cluster()
    c1 = fleet["c1"]
    c1.ssh("mkdir -p /etc/umm/umm.toml.d && echo 'keep_if_enabled = []' > /etc/umm/umm.toml.d/60-no-agents.toml")
    try:
        old = c1.boot_id()
        c1.ssh("umm on", check=False, timeout=60)
        c1.wait_boot(old)
        assert c1.umm_status()["mode"] == "maintenance"
        assert c1.is_active("consul.service") != "active"
        fleet.wait("c1 gone from the cluster's view", lambda: fleet.members("s1").get("c1") in (3, 4))
    finally:
        c1.ssh("rm -f /etc/umm/umm.toml.d/60-no-agents.toml; umm off", check=False)
    c1.wait_active("consul.service")
    fleet.wait("c1 alive again", lambda: fleet.members("s1").get("c1") == 1)
