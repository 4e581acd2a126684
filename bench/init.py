#!/usr/bin/env python3
"""Benchmark: what umm-init (the PID-1 pre-stage) adds between the kernel's
exec of init and the exec of the real init, on a fake root.

    bench/init.py [--rounds N] [--umm BIN] [--dynamic BIN] [--no-build]

Runs scripts/build-release.sh first; default binaries: its static generator
(as umm-init) and the glibc-dynamic one (target/release) as a reference. Python 3 standard library and a C compiler (cc, static libc) only.

Measured: a tiny C program `stamp` takes CLOCK_MONOTONIC and execs its
argument with the time in the environment; the fake real init (`fakeinit`, a
static C program) takes CLOCK_MONOTONIC first thing and writes the difference.
So every figure is exec-to-exec, and the baseline (stamp exec'ing fakeinit
directly, no umm-init) carries the same exec costs: "added" is the median of
the per-round differences with the baseline run of the same round
(interleaved rounds, order rotated). umm-init runs on a fake root
(UMM_ROOT): the Debian 12 server's root of bench/generator.py, with
`umm.init=/sbin/fakeinit` on its /proc/cmdline; as PID 1 on a real root it
would also check that /proc and /run are mounted (two statfs/stat calls, no
mount when the initramfs or devtmpfs did it already).
"""

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generator as g  # noqa: E402  (the fake root and state texts)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

STAMP_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    struct timespec t; char buf[32];
    clock_gettime(CLOCK_MONOTONIC, &t);
    snprintf(buf, sizeof buf, "%lld", (long long)t.tv_sec * 1000000000LL + t.tv_nsec);
    setenv("BENCH_T0", buf, 1);
    execv(argv[1], argv + 1);
    return 127;
}
"""

FAKEINIT_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
int main(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    long long now = (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
    const char *t0 = getenv("BENCH_T0"), *d = getenv("UMM_DECISION");
    printf("%lld %s\n", now - atoll(t0 ? t0 : "0"), d ? d : "unset");
    return 0;
}
"""


def die(msg):
    print(f"bench: {msg}", file=sys.stderr)
    sys.exit(1)


def cc(src, out, base):
    c = os.path.join(base, os.path.basename(out) + ".c")
    with open(c, "w") as f:
        f.write(src)
    p = subprocess.run(["cc", "-O2", "-static", "-o", out, c], capture_output=True, text=True)
    if p.returncode != 0:
        die(f"cc -static {c} failed (install gcc and libc6-dev):\n{p.stderr}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--umm", default=os.path.join(REPO, "target/x86_64-unknown-linux-musl/release/umm-generator"))
    ap.add_argument("--dynamic", default=os.path.join(REPO, "target/release/umm-generator"))
    ap.add_argument("--no-build", action="store_true", help="do not run scripts/build-release.sh first")
    a = ap.parse_args()
    if not a.no_build:
        print("bench: scripts/build-release.sh", file=sys.stderr)
        subprocess.run([os.path.join(REPO, "scripts/build-release.sh")], check=True, stdout=sys.stderr)
    for b in (a.umm, a.dynamic):
        if not os.access(b, os.X_OK):
            die(f"{b} not built: run scripts/build-release.sh")
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    base = tempfile.mkdtemp(prefix="umm-init-bench.", dir=shm)
    try:
        return bench(a, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def bench(a, base):
    stamp = os.path.join(base, "stamp")
    cc(STAMP_C, stamp, base)
    fakeinit = os.path.join(base, "fakeinit")
    cc(FAKEINIT_C, fakeinit, base)
    # umm-init looks at its name: run it as .../umm-init, like the /usr/sbin/umm-init link.
    bins = {}
    for key, b in (("static", a.umm), ("dynamic", a.dynamic)):
        d = os.path.join(base, key)
        os.mkdir(d)
        bins[key] = os.path.join(d, "umm-init")
        shutil.copy(b, bins[key])

    roots = {}
    for key, state in (("normal", g.STATE_NORMAL), ("maint", g.STATE_REQUEST)):
        r = os.path.join(base, f"root-{key}")
        g.make_root(r, REPO, state)
        with open(os.path.join(r, "proc/cmdline"), "w") as f:
            f.write(g.CMDLINE + " umm.init=/sbin/fakeinit\n")
        os.makedirs(os.path.join(r, "sbin"))
        shutil.copy(fakeinit, os.path.join(r, "sbin/fakeinit"))
        os.makedirs(os.path.join(r, "run/umm"))
        roots[key] = r

    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    cases = [
        ("base", "baseline: stamp -> fakeinit directly", [stamp, fakeinit], env, "unset"),
        ("normal", "umm-init (static), normal", [stamp, bins["static"]],
         dict(env, UMM_ROOT=roots["normal"]), "normal"),
        ("maint", "umm-init (static), maintenance", [stamp, bins["static"]],
         dict(env, UMM_ROOT=roots["maint"]), "maintenance:requested"),
        ("dyn-normal", "  (ref.) umm-init glibc-dynamic, normal", [stamp, bins["dynamic"]],
         dict(env, UMM_ROOT=roots["normal"]), "normal"),
        ("dyn-maint", "  (ref.) umm-init glibc-dynamic, maintenance", [stamp, bins["dynamic"]],
         dict(env, UMM_ROOT=roots["maint"]), "maintenance:requested"),
    ]
    res = {c[0]: [] for c in cases}
    load_before = os.getloadavg()
    t_start = time.time()
    for r in range(a.warmup + a.rounds):
        k = r % len(cases)
        for key, label, argv, e, want in cases[k:] + cases[:k]:
            p = subprocess.run(argv, env=e, stdin=subprocess.DEVNULL, capture_output=True, text=True)
            out = p.stdout.split()
            if p.returncode != 0 or len(out) != 2 or out[1] != want:
                die(f"{label}: exit {p.returncode}, output {p.stdout!r} (want decision {want}), "
                    f"stderr {p.stderr[-500:]!r}")
            if r >= a.warmup:
                res[key].append(int(out[0]))
    load_after = os.getloadavg()
    elapsed = time.time() - t_start

    def med(xs):
        return statistics.median(xs)

    def p90(xs):
        s = sorted(xs)
        return s[max(0, -(-len(s) * 9 // 10) - 1)]

    print("umm-init benchmark: exec of umm-init -> exec of the real init, fake root")
    print(f"  date     {time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime(t_start))}")
    print(f"  machine  {os.cpu_count()} CPUs, kernel {platform.release()}, "
          f"load avg {load_before[0]:.2f} -> {load_after[0]:.2f}")
    print(f"  umm-init {a.umm} (reference: {a.dynamic})")
    print(f"  rounds   {a.rounds} interleaved (+{a.warmup} warm-up); {elapsed:.0f} s in all")
    print()
    print(f"{'':46} {'med µs':>8} {'p90 µs':>8} {'added µs':>9} {'added p90':>9}")
    base_ = res["base"]
    added = {}
    for key, label, *_ in cases:
        xs = res[key]
        d = [x - b for x, b in zip(xs, base_)]
        added[key] = med(d)
        print(f"{label:46} {med(xs) / 1000:8.0f} {p90(xs) / 1000:8.0f} {med(d) / 1000:9.0f} {p90(d) / 1000:9.0f}")
    print()
    worst = max(added["normal"], added["maint"])
    ok = worst < 1_000_000
    print(f"{'PASS' if ok else 'FAIL'}  added by umm-init (static, median of paired differences): "
          f"worst {worst / 1000:.0f} µs < 1000 µs")
    print(f"ratio static / glibc-dynamic added time: normal {added['normal'] / added['dyn-normal']:.2f}, "
          f"maintenance {added['maint'] / added['dyn-maint']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
