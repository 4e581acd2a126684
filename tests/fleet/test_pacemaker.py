"""Scenario 7 (issue 15), the Pacemaker part: umm puts a node of a real 3-node
corosync+pacemaker cluster (Debian 12's packages) in Pacemaker standby before
the reboot into maintenance mode and takes it out after `umm off`, so its HA
peers see a node taken out of service, not a failed one.

Nodes pm1..pm3: nspawn boots of the base rootfs with a cached layer of
corosync and pacemaker (tests/fleet/build-pacemaker-tree.sh), each in its own
network namespace on this module's bridge; corosync (knet) over the bridge's
addresses only; no STONITH in this test cluster (stonith-enabled=false). A
Dummy resource prefers pm1 (location score 100, no stickiness). No Consul.
"""

from __future__ import annotations

import shlex
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import fleetlib
import vmlib

NAMES = ["pm1", "pm2", "pm3"]  # not s1..c7: nspawn's host-side veth vb-<name> is host-wide
HERE = Path(__file__).resolve().parent
UMM_CONF = "/etc/umm/umm.toml.d/50-pacemaker.toml"


def corosync_conf(fleet: fleetlib.Fleet) -> str:
    nodes = "".join(
        f"    node {{\n        ring0_addr: {n.addr}\n        name: {n.name}\n        nodeid: {i}\n    }}\n"
        for i, n in enumerate(fleet.nodes.values(), start=1))
    return ("totem {\n    version: 2\n    cluster_name: ummpm\n    transport: knet\n"
            "    crypto_cipher: none\n    crypto_hash: none\n    token: 3000\n}\n"
            f"nodelist {{\n{nodes}}}\n"
            "quorum {\n    provider: corosync_votequorum\n}\n"
            "logging {\n    to_logfile: no\n    to_syslog: yes\n    timestamp: on\n}\n")


def mon(node: fleetlib.Node) -> ET.Element:
    return ET.fromstring(node.out("crm_mon --one-shot --output-as=xml"))


def node_state(node: fleetlib.Node, name: str) -> dict:
    for n in mon(node).iter("node"):
        if n.get("name") == name and n.get("type") is not None:
            return dict(n.attrib)
    raise AssertionError(f"{node.name}: crm_mon lists no node {name}")


def dummy_on(node: fleetlib.Node) -> list[str]:
    for r in mon(node).iter("resource"):
        if r.get("id") == "dummy":
            return [n.get("name") for n in r.iter("node")] if r.get("role") == "Started" else []
    return []


def quorate(node: fleetlib.Node) -> bool:
    dc = mon(node).find("summary/current_dc")
    return dc is not None and dc.get("present") == "true" and dc.get("with_quorum") == "true"


def standby_attr(node: fleetlib.Node, name: str) -> str:
    r = node.ssh(f"crm_attribute --node {name} --name standby --lifetime forever --query --quiet", check=False)
    return r.stdout.strip() if r.returncode == 0 else "(none)"


def wait_all_online(pm: fleetlib.Fleet, via: str = "pm2", timeout: float = 180) -> None:
    pm.wait("all 3 pacemaker nodes online with a quorate DC", lambda: (
        quorate(pm[via]) and all(node_state(pm[via], n)["online"] == "true" for n in NAMES)), timeout=timeout)


def make_cluster() -> fleetlib.Fleet:
    t0 = time.monotonic()
    base = vmlib.build_base()
    layer = Path(subprocess.run([str(HERE / "build-pacemaker-tree.sh"), str(base)], check=True,
                                stdout=subprocess.PIPE, text=True).stdout.strip().splitlines()[-1])
    f = fleetlib.Fleet("pacemaker", names=NAMES, layers=(layer / "upper",))
    try:
        conf = corosync_conf(f)
        for n in f.nodes.values():
            (n.root / "etc/corosync/corosync.conf").write_text(conf)
        f.start_all()
        wait_all_online(f, via="pm1")
        f["pm1"].ssh("crm_attribute --type crm_config --name stonith-enabled --update false"
                     " && crm_attribute --type rsc_defaults --name resource-stickiness --update 0")
        f["pm1"].ssh("cibadmin --create --scope resources --xml-text " + shlex.quote(
            '<primitive id="dummy" class="ocf" provider="pacemaker" type="Dummy">'
            '<operations><op id="dummy-monitor" name="monitor" interval="5s"/></operations></primitive>'))
        f["pm1"].ssh("cibadmin --create --scope constraints --xml-text " + shlex.quote(
            '<rsc_location id="dummy-prefers-pm1" rsc="dummy" node="pm1" score="100"/>'))
        f.wait("dummy started on pm1", lambda: dummy_on(f["pm2"]) == ["pm1"], timeout=60)
        print(f"pacemaker cluster of 3 nodes up with the dummy on pm1 in {time.monotonic() - t0:.1f} s")
        return f
    except BaseException:
        f.close()
        raise


@pytest.fixture(scope="module")
def pm():
    f = make_cluster()
    try:
        yield f
    finally:
        f.close()


def test_standby_around_maintenance_mode(pm):
    """`umm on` with [pacemaker] at its default (enabled = "auto", no table at all):
    pm1 goes to standby and the dummy moves away before the reboot; in MM no
    cluster stack runs on pm1, the peers keep quorum and see pm1 offline and
    standby, not unclean (no fencing); `umm off`: pacemaker starts, the
    standby is taken away (umm-coordination.service) and the dummy returns."""
    pm1, pm2 = pm["pm1"], pm["pm2"]
    assert dummy_on(pm2) == ["pm1"]
    t0 = time.monotonic()
    out = pm1.out("umm on --no-reboot")
    t_standby = time.monotonic() - t0
    print(out)
    assert "[pacemaker]: pm1 is in standby" in out, out
    st = node_state(pm2, "pm1")
    assert st["standby"] == "true" and st["resources_running"] == "0", st
    where = dummy_on(pm2)
    assert where and "pm1" not in where, where
    print(f"umm on: standby and the dummy moved to {where} in {t_standby:.1f} s")

    t0 = time.monotonic()
    pm1.reboot()
    print(f"pm1 rebooted into maintenance mode in {time.monotonic() - t0:.1f} s")
    assert pm1.umm_status()["mode"] == "maintenance"
    assert pm1.is_active("corosync.service") != "active"
    assert pm1.is_active("pacemaker.service") != "active"
    pm.wait("pm2 sees pm1 offline", lambda: node_state(pm2, "pm1")["online"] == "false", timeout=60)
    st = node_state(pm2, "pm1")
    assert st["unclean"] == "false", st  # a node that left, not a failed one to fence
    assert quorate(pm2) and quorate(pm["pm3"])
    assert standby_attr(pm2, "pm1") == "on"
    assert dummy_on(pm2) in (["pm2"], ["pm3"])
    # No fencing was even attempted (with STONITH, an unclean node would be fenced).
    history = pm2.out("stonith_admin --history '*' --output-as=xml")
    assert "<fence_event" not in history, history

    t0 = time.monotonic()
    print(pm1.out("umm off"))
    pm.wait("pm1 online and out of standby", lambda: (
        node_state(pm2, "pm1")["online"] == "true" and node_state(pm2, "pm1")["standby"] == "false"), timeout=180)
    t_back = time.monotonic() - t0
    assert standby_attr(pm2, "pm1") == "(none)"
    pm.wait("the dummy back on pm1", lambda: dummy_on(pm2) == ["pm1"], timeout=60)
    print(f"umm off: pm1 back in the cluster, out of standby in {t_back:.1f} s; dummy back on pm1")
    print(pm1.ssh("journalctl -b -u umm-coordination.service --no-pager -o cat", check=False).stdout)
    assert not pm1.ssh("test -e /var/lib/umm/pacemaker-standby", check=False).returncode == 0


def refused_and_nothing_changed(pm, conf: str, why: str) -> str:
    pm1, pm3 = pm["pm1"], pm["pm3"]
    pm1.ssh(f"mkdir -p /etc/umm/umm.toml.d && printf %s {shlex.quote(conf)} > {UMM_CONF}")
    try:
        r = pm1.ssh("umm on --no-reboot", check=False)
    finally:
        pm1.ssh(f"rm -f {UMM_CONF}")
    print(f"umm on ({why}): exit {r.returncode}\n{r.stdout}{r.stderr}")
    assert r.returncode != 0, r.stdout
    st = pm1.umm_status()
    assert st["mode"] in ("normal", "resumed") and not st.get("request"), st
    assert pm1.ssh("test -e /var/lib/umm/pacemaker-standby", check=False).returncode != 0
    assert standby_attr(pm3, "pm1") == "(none)"
    return r.stderr


def test_refuses_without_quorum(pm):
    """pm2 and pm3 stop their cluster stack: pm1's partition (1 of 3 votes) has
    no quorum, `umm on` refuses and changes nothing (standby, request, note)."""
    pm1 = pm["pm1"]
    for n in ("pm2", "pm3"):
        pm[n].ssh("systemctl stop pacemaker corosync")
    try:
        pm.wait("pm1 without quorum", lambda: not quorate(pm1), timeout=60)
        err = refused_and_nothing_changed(pm, "", "no quorum")
        assert "no quorum" in err, err
    finally:
        for n in ("pm2", "pm3"):
            pm[n].ssh("systemctl start corosync pacemaker")
        wait_all_online(pm)
    assert standby_attr(pm["pm2"], "pm1") == "(none)"


def test_refuses_when_pacemaker_does_not_answer(pm):
    """enabled = true and pm1's own pacemaker stopped: crm_mon cannot connect,
    `umm on` refuses and changes nothing; with enabled = "auto" it goes on."""
    pm1 = pm["pm1"]
    pm1.ssh("systemctl stop pacemaker")
    try:
        err = refused_and_nothing_changed(pm, "[pacemaker]\nenabled = true\n", "pacemaker stopped")
        assert "pacemaker does not run" in err, err
    finally:
        pm1.ssh("systemctl start pacemaker")
        wait_all_online(pm)
