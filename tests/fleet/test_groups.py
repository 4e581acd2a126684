"""Scenario 2 of issue 15: two groups, N = 2 each. Six clients, three per
group (`a`: c2-c4, `b`: c5-c7), all with a reboot required, each running
rebootmgr as its timer would with `--group G --max-parallel 2`. Each group
runs its own service (`app-a`, `app-b`, tagged rebootmgr), as groups of
different roles do. Every node reboots once; from the nodes' own journals,
never more than 2 of a group are down at once, and two of a group are
(N = 2 is used, not just allowed); the groups' slots are independent: both
groups hold slots at the same moment (Consul KV, sampled)."""

from __future__ import annotations

import base64
import json
import threading
import time

from rolloutlib import Rollout, report, roll

GROUPS = {"a": ("c2", "c3", "c4"), "b": ("c5", "c6", "c7")}
APP = "/etc/consul.d/app.json"


def holders(fleet, group: str) -> list[str]:
    kv = fleet.http("s1", "GET", f"/v1/kv/service/rebootmgr/{group}_lock/.lock")
    return sorted(json.loads(base64.b64decode(kv[0]["Value"]))["Holders"]) if kv else []


def own_service(node, name: str | None) -> None:
    """The node's `app` service renamed to `name` (None: back to `app`)."""
    svc = json.loads(node.out(f"cat {APP}"))
    svc["service"]["name"] = name or "app"
    node.ssh(f"cat > {APP} <<'EOF'\n{json.dumps(svc)}\nEOF\nconsul reload >/dev/null")


def test_two_groups_two_at_a_time(fleet):
    fleet.wait_cluster()
    for g, names in GROUPS.items():
        for n in names:
            own_service(fleet[n], f"app-{g}")
            fleet.wait(f"{n}: group {g}", lambda n=n, g=g: fleet[n].ssh(
                f"rebootmgr config --ensure --group {g}", check=False).returncode == 0, timeout=60)
    results: dict[str, Rollout] = {}
    errors: list[BaseException] = []
    samples: list[tuple[float, list[str], list[str]]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                samples.append((time.time(), holders(fleet, "a"), holders(fleet, "b")))
            except Exception:  # noqa: BLE001 - a server may be busy for a moment
                pass
            done.wait(0.5)

    def one_group(g: str) -> None:
        try:
            results[g] = roll(fleet, [fleet[n] for n in GROUPS[g]], run_args=f"--group {g} --max-parallel 2")
        except BaseException as e:  # noqa: BLE001 - re-raised by the test below
            errors.append(e)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    threads = [threading.Thread(target=one_group, args=(g,)) for g in GROUPS]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        done.set()
        sampler.join(timeout=10)
        for g, names in GROUPS.items():
            for n in names:
                fleet[n].ssh("rebootmgr config --ensure --no-group", check=False)
                own_service(fleet[n], None)
    if errors:
        raise errors[0]
    for g, ro in results.items():
        ro.check_each_rebooted_once()
        assert ro.max_down_at_once() <= 2, (g, ro.last_down())
    assert max(ro.max_down_at_once() for ro in results.values()) == 2, {
        g: ro.last_down() for g, ro in results.items()}
    both = [s for s in samples if s[1] and s[2]]
    assert both, f"the two groups never held slots at the same time: {samples}"
    assert max(len(s[1]) for s in samples) <= 2 and max(len(s[2]) for s in samples) <= 2, samples
    for g, ro in results.items():
        report(f"group {g}, --max-parallel 2", ro)
    print(f"  both groups held slots at once in {len(both)} of {len(samples)} samples (every 0.5 s);"
          f" e.g. a: {both[0][1]}, b: {both[0][2]}")
