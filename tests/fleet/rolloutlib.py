"""A rollout as rebootmgr.timer runs it, shared by the rollout scenarios
(tests/fleet/test_rollout.py, test_groups.py, test_consul_restart.py): every
node of the rollout runs `rebootmgr run` in a loop (a 2 s pause between runs)
until each has rebooted once and finished its post-boot phase; the down
windows come from each node's own persistent journal."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

SETTLE = 3  # seconds; the production default is 130

# "Try later" exit codes a blocked run may end with: checks failing (2), a
# member down (3), slot busy (4), Consul unreachable (6: the agent is not up
# yet after a boot, or Raft has no leader for a moment), reboot pending (8),
# quorum at risk (10).
TRY_LATER = {2, 3, 4, 6, 8, 10}


def boots(node) -> list[dict]:
    """The node's boots from its own (persistent) journal, oldest first."""
    return json.loads(node.out("journalctl --list-boots -o json --no-pager"))


def windows_down(node) -> list[tuple[float, float]]:
    """(end of a boot, start of the next) for each reboot, in epoch seconds."""
    b = boots(node)
    return [(b[i]["last_entry"] / 1e6, b[i + 1]["first_entry"] / 1e6) for i in range(len(b) - 1)]


@dataclass
class Rollout:
    nodes: list
    run_args: str = ""
    before: dict = field(default_factory=dict)  # boot id at the start
    nboots: dict = field(default_factory=dict)  # journal boots at the start
    busy: dict = field(default_factory=dict)  # rebootmgr's wall time per node
    codes: dict = field(default_factory=dict)  # exit codes of every run
    unexpected: list = field(default_factory=list)  # (node, code, stderr) of runs outside {0} | TRY_LATER
    released: dict = field(default_factory=dict)  # when the post-boot phase finished (epoch)
    wall: float = 0.0

    down: list = field(default_factory=list)  # last_down(), read from the journals once the rollout ended

    def last_down(self) -> list[tuple[str, tuple[float, float]]]:
        """Each node's last down window, in the order they went down."""
        if not self.down:
            last = [(n.name, windows_down(n)[-1]) for n in self.nodes]
            self.down = sorted(last, key=lambda x: x[1][0])
        return self.down

    def max_down_at_once(self) -> int:
        """The most nodes of the rollout down at the same moment."""
        last = self.last_down()
        edges = sorted([(d, 1) for _, (d, _) in last] + [(u, -1) for _, (_, u) in last])
        most = now = 0
        for _, step in edges:
            now += step
            most = max(most, now)
        return most

    def check_each_rebooted_once(self) -> None:
        for n in self.nodes:
            assert len(boots(n)) == self.nboots[n.name] + 1, (n.name, boots(n))
            assert n.exits.count(133) >= 1, (n.name, n.exits)
            assert any(c == 0 for c in self.codes[n.name]), (n.name, self.codes[n.name])
            assert set(self.codes[n.name]) <= {0} | TRY_LATER, (n.name, self.codes[n.name], self.unexpected)


def markers(fleet, nodes: list) -> list[str]:
    """The rollout's nodes that hold a `reboot_in_progress` marker in KV."""
    kv = fleet.http("s1", "GET", "/v1/kv/service/rebootmgr/?recurse=true") or []
    return [n.name for n in nodes if any(e["Key"] == f"service/rebootmgr/nodes/{n.name}/reboot_in_progress"
                                         for e in kv)]


def roll(fleet, nodes: list, run_args: str = "", timeout: float = 600, during=None) -> Rollout:
    """Runs the rollout over `nodes` (each with a reboot required) until all
    have rebooted once and finished; `during(rollout)`, if given, is called
    once the first node went down (the Consul-restart scenario)."""
    ro = Rollout(nodes=nodes, run_args=run_args)
    ro.before = {n.name: n.boot_id() for n in nodes}
    ro.nboots = {n.name: len(boots(n)) for n in nodes}
    fleet.wait_cluster()  # an earlier test may have rebooted a server
    for n in nodes:
        fleet.wait(f"{n.name}: rebootmgr config --ensure", lambda n=n: n.ssh(
            "rebootmgr config --ensure", check=False).returncode == 0, timeout=60)
    for n in nodes:
        n.ssh("touch /var/run/reboot-required")
    ro.busy = {n.name: 0.0 for n in nodes}
    ro.codes = {n.name: [] for n in nodes}
    t0 = time.monotonic()
    done = threading.Event()

    def timer(node) -> None:
        while not done.is_set():
            s = time.monotonic()
            try:
                r = node.ssh("cat /proc/sys/kernel/random/boot_id;"
                             f" rebootmgr run --check-triggers --settle {SETTLE} --wait-until-healthy 60 {run_args}",
                             check=False, timeout=120)
                if r.returncode == 255:
                    continue  # ssh's own: the connection went with the reboot
                ro.codes[node.name].append(r.returncode)
                if r.returncode not in {0} | TRY_LATER:
                    ro.unexpected.append((node.name, r.returncode, r.stderr[-2000:]))
                boot = r.stdout.split("\n", 1)[0].strip()
                if r.returncode == 0 and boot != ro.before[node.name] and node.name not in ro.released:
                    ro.released[node.name] = time.time()
                ro.busy[node.name] += time.monotonic() - s
            except Exception:  # noqa: BLE001 - the node is rebooting: ssh fails
                pass
            done.wait(2)

    threads = [threading.Thread(target=timer, args=(n,), daemon=True) for n in nodes]
    for t in threads:
        t.start()

    def finished() -> bool:
        for n in nodes:
            if n.boot_id() == ro.before[n.name]:
                return False
            if n.ssh("test -e /var/run/reboot-required", check=False).returncode == 0:
                return False
            if n.name not in ro.released:
                return False
        return not markers(fleet, nodes)

    try:
        if during is not None:
            fleet.wait("the rollout's first slot taken", lambda: markers(fleet, nodes), timeout=timeout)
            during(ro)
        fleet.wait("every node rebooted once and finished its post-boot phase", finished, timeout=timeout)
    finally:
        done.set()
        for t in threads:
            t.join(timeout=150)
    ro.wall = time.monotonic() - t0
    return ro


def report(title: str, ro: Rollout) -> None:
    order = " -> ".join(name for name, _ in ro.last_down())
    print(f"\n{title}: {len(ro.nodes)} nodes, {ro.wall:.1f} s wall, order {order},"
          f" at most {ro.max_down_at_once()} down at once")
    for name, (down, up) in ro.last_down():
        print(f"  {name}: down for {up - down:.1f} s; rebootmgr busy {ro.busy[name]:.1f} s in"
              f" {len(ro.codes[name])} runs (settle {SETTLE} s included), exit codes {sorted(set(ro.codes[name]))},"
              f" slot released {ro.released[name] - up:.1f} s after its boot")
