"""Benchmark (tests/nova/run.sh bench): drain time of 10 servers at N = 1, 2, 4."""
import time

from conftest import max_in_flight


def test_bench_drain_10_servers(lab, umm):
    nova = lab
    rows = []
    for n in (1, 2, 4):
        nova.delete_all()
        nova.set_service("compute1")
        nova.boot("compute1", 10, prefix=f"b{n}-")
        before = {m["id"] for m in nova.live_migrations("compute1")}
        t0 = time.monotonic()
        umm("enter", "compute1", "--max-in-flight", str(n), "--settle", "0s", "--poll", "300ms", check=0)
        took = time.monotonic() - t0
        migs = [m for m in nova.live_migrations("compute1") if m["id"] not in before]
        peak = max_in_flight(migs)
        assert len(migs) == 10 and peak <= n
        rows.append((n, took, peak))
        umm("leave", "compute1", check=0)
    print("\ndrain of 10 servers (fake driver, 2 cores):")
    for n, took, peak in rows:
        print(f"  N={n}: {took:6.1f} s  (peak in flight from Nova's records: {peak})")
