"""Scenario 8 of issue 15: Consul trouble mid-rollout. Three clients (c2-c4,
one slot) roll through their reboots; as soon as the first one holds the
slot, all three Consul servers are restarted at once, so for a while there is
no leader and every `rebootmgr run` meets an unavailable Consul. Nothing
reboots twice, nothing reboots without the slot (from the nodes' own
journals: the down windows never overlap, and each starts only after the
previous node finished its post-boot phase), and the rollout completes once
Consul is back."""

from __future__ import annotations

import threading
import time

from rolloutlib import Rollout, report, roll


def test_consul_servers_restarted_mid_rollout(fleet):
    servers = [fleet[n] for n in ("s1", "s2", "s3")]
    restarted: dict[str, float] = {}

    def restart_servers(ro: Rollout) -> None:
        t0 = time.monotonic()
        threads = [threading.Thread(target=s.ssh, args=("systemctl restart consul.service",)) for s in servers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        restarted["at"] = time.time()
        restarted["took"] = time.monotonic() - t0
        fleet.wait_cluster()
        restarted["leader_back"] = time.monotonic() - t0

    ro = roll(fleet, [fleet[n] for n in ("c2", "c3", "c4")], during=restart_servers)
    ro.check_each_rebooted_once()
    assert ro.max_down_at_once() == 1, ro.last_down()
    last = ro.last_down()
    for (a, _), (b, (b_down, _)) in zip(last, last[1:]):
        assert b_down > ro.released[a], f"{b} went down at {b_down}, {a} released its slot at {ro.released[a]}"
    unavailable = sum(c == 6 for codes in ro.codes.values() for c in codes)
    report("rollout with the Consul servers restarted", ro)
    print(f"  servers restarted {restarted['took']:.1f} s, cluster healthy again {restarted['leader_back']:.1f} s"
          f" after the restart began; {unavailable} runs ended 'Consul unavailable' (exit 6)")
