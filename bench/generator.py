#!/usr/bin/env python3
"""Benchmark of umm-generator against systemd-system-update-generator.

Run through bench/generator.sh (which installs the tools and builds the
release binary). Python 3 standard library only.

Every invocation gets three fresh output dirs (normal early late) on tmpfs.
The commands are interleaved (one of each per round, the order rotated every
round) so that noise from other work on the machine falls on all of them
alike, and every figure is also given relative to the floor (/bin/true,
measured in the same rounds) and as a ratio umm/systemd.
"""

import argparse
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

UNIT_DIR = "/usr/lib/systemd/system"
TRIGGER = "/system-update"
CMDLINE = ("BOOT_IMAGE=/boot/vmlinuz-6.1.0-28-amd64 "
           "root=UUID=5c2f8a4e-3b1d-4f7e-9a60-2d8c1e7b9f10 ro quiet")
BOOT_ID = "6f1d2c3b-4a59-4e8f-9b7a-0c1d2e3f4a5b"

# A Debian 12 server's enabled units (symlinks only: what the generator scans).
ENABLED = {
    "getty.target.wants": ["getty@tty1.service"],
    "multi-user.target.wants": [
        "cron.service", "networking.service", "remote-fs.target",
        "rsyslog.service", "ssh.service", "systemd-timesyncd.service",
        "e2scrub_reap.service"],
    "network-online.target.wants": ["networking.service"],
    "sysinit.target.wants": ["systemd-pstore.service"],
    "timers.target.wants": [
        "apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer",
        "e2scrub_all.timer", "fstrim.timer", "logrotate.timer", "man-db.timer"],
}
ALIASES = {
    "sshd.service": "ssh.service",
    "syslog.service": "rsyslog.service",
    "dbus-org.freedesktop.timesync1.service": "systemd-timesyncd.service",
}

HISTORY = """
[[history]]
time = 1760000000
from = "normal"
to = "maintenance"
reason = "requested"

[[history]]
time = 1760003600
from = "maintenance"
to = "normal"
reason = "resumed"
"""

STATE_NORMAL = "version = 1\nunclean_boots = 0\n" + HISTORY
STATE_REQUEST = """version = 1
unclean_boots = 0

[request]
requested_at = 1763700000
requested_by = "root"
""" + HISTORY


def die(msg):
    print(f"bench: {msg}", file=sys.stderr)
    sys.exit(1)


def make_root(root, repo, state):
    etc = os.path.join(root, "etc/systemd/system")
    for wants, units in ENABLED.items():
        d = os.path.join(etc, wants)
        os.makedirs(d)
        for u in units:
            os.symlink(f"/lib/systemd/system/{u}", os.path.join(d, u))
    for alias, unit in ALIASES.items():
        os.symlink(f"/lib/systemd/system/{unit}", os.path.join(etc, alias))
    os.makedirs(os.path.join(root, "usr/lib/umm"))
    shutil.copy(os.path.join(repo, "dist/usr/lib/umm/umm.toml"), os.path.join(root, "usr/lib/umm/umm.toml"))
    os.makedirs(os.path.join(root, "etc/umm/umm.toml.d"))
    os.makedirs(os.path.join(root, "proc/sys/kernel/random"))
    with open(os.path.join(root, "proc/sys/kernel/random/boot_id"), "w") as f:
        f.write(BOOT_ID + "\n")
    with open(os.path.join(root, "proc/cmdline"), "w") as f:
        f.write(CMDLINE + "\n")
    os.makedirs(os.path.join(root, "run"))
    os.makedirs(os.path.join(root, "var/lib/umm"))
    with open(os.path.join(root, "var/lib/umm/state"), "w") as f:
        f.write(state)


class Cmd:
    def __init__(self, key, label, path, env, check, trigger=False):
        self.key, self.label, self.path, self.env = key, label, path, env
        self.check, self.trigger = check, trigger
        self.wall = []      # ns, one per round
        self.rss_ru = []    # KiB from wait4, one per round
        self.rss = []       # KiB from /usr/bin/time -f %M
        self.ir = []        # callgrind total Ir
        self.perf = []      # perf stat instructions:u


class Trigger:
    """Creates /system-update only around one invocation, never leaves it."""

    def __init__(self, mark):
        self.mark = mark
        self.ours = False

    def available(self):
        if os.path.lexists(TRIGGER):
            return f"{TRIGGER} already exists and is not ours: not touching it"
        try:
            self.create()
            self.remove()
        except OSError as e:
            return f"cannot create {TRIGGER}: {e}"
        return None

    def create(self):
        fd = os.open(TRIGGER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self.ours = True
        try:
            os.write(fd, self.mark.encode())
        finally:
            os.close(fd)

    def remove(self):
        if self.ours:
            try:
                os.unlink(TRIGGER)
            except FileNotFoundError:
                pass
            self.ours = False


def fresh_dirs(base, n):
    inv = os.path.join(base, f"inv{n}")
    os.mkdir(inv)
    dirs = [os.path.join(inv, d) for d in ("normal", "early", "late")]
    for d in dirs:
        os.mkdir(d)
    return inv, dirs


def spawn_timed(cmd, dirs, devnull_actions):
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(cmd.path, [cmd.path] + dirs, cmd.env, file_actions=devnull_actions)
    _, status, ru = os.wait4(pid, 0)
    t1 = time.perf_counter_ns()
    return t1 - t0, os.waitstatus_to_exitcode(status), ru.ru_maxrss


def median(xs):
    return statistics.median(xs)


def p90(xs):
    s = sorted(xs)
    return s[max(0, -(-len(s) * 9 // 10) - 1)]  # nearest rank


def run_with_trigger(trig, cmd, fn):
    if cmd.trigger:
        trig.create()
    try:
        return fn()
    finally:
        trig.remove()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--umm", required=True)
    ap.add_argument("--systemd", required=True)
    ap.add_argument("--floor", default="/bin/true")
    ap.add_argument("--mark", required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--rounds", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--rss-runs", type=int, default=21)
    ap.add_argument("--ir-runs", type=int, default=3)
    ap.add_argument("--size-of", help="binary whose stripped size is checked (default: --umm)")
    ap.add_argument("--dynamic", help="the same generator dynamically linked (glibc), measured as a reference")
    ap.add_argument("--no-trigger", action="store_true")
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()

    trig = Trigger(a.mark)

    def on_signal(signum, _frame):
        trig.remove()
        sys.exit(128 + signum)

    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(s, on_signal)
    try:
        return bench(a, trig)
    finally:
        trig.remove()


def bench(a, trig):
    shm = "/dev/shm"
    tmpfs = False
    try:
        with open("/proc/mounts") as f:
            tmpfs = any(l.split()[1] == shm and l.split()[2] == "tmpfs" for l in f)
    except OSError:
        pass
    base = tempfile.mkdtemp(prefix="umm-bench.", dir=shm if tmpfs and os.access(shm, os.W_OK) else None)
    try:
        return bench_in(a, trig, base, tmpfs)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def bench_in(a, trig, base, tmpfs):
    for p in (a.umm, a.systemd, a.floor):
        if not os.access(p, os.X_OK):
            die(f"{p} is not executable")
    for p in (TRIGGER, "/etc/system-update"):
        if os.path.lexists(p):
            die(f"{p} exists on this machine (an offline update is pending?): systemd's generator "
                "would redirect in every case; not touching it, not measuring")

    root_normal = os.path.join(base, "root-normal")
    root_request = os.path.join(base, "root-request")
    make_root(root_normal, a.repo, STATE_NORMAL)
    make_root(root_request, a.repo, STATE_REQUEST)
    out = os.path.join(base, "out")
    os.mkdir(out)

    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
           "SYSTEMD_PROC_CMDLINE": CMDLINE}

    def no_link(dirs):
        return not os.path.lexists(os.path.join(dirs[1], "default.target"))

    def link_to(target):
        def check(dirs):
            try:
                return os.readlink(os.path.join(dirs[1], "default.target")) == target
            except OSError:
                return False
        return check

    def link_ends(suffix):
        # Debian builds systemd with /lib/systemd/system as its unit dir.
        def check(dirs):
            try:
                return os.readlink(os.path.join(dirs[1], "default.target")).endswith(suffix)
            except OSError:
                return False
        return check

    def umm_normal_ok(dirs):
        try:
            with open(os.path.join(dirs[0], "umm-boot.service.d/50-decision.conf")) as f:
                return no_link(dirs) and "UMM_DECISION=normal" in f.read()
        except OSError:
            return False

    def umm_request_ok(dirs):
        try:
            with open(os.path.join(dirs[0], "umm-boot.service.d/50-decision.conf")) as f:
                ok = "UMM_DECISION=maintenance:requested" in f.read()
        except OSError:
            return False
        return ok and link_to(f"{UNIT_DIR}/umm.target")(dirs)

    trigger_skip = "--no-trigger given" if a.no_trigger else trig.available()
    cmds = [
        Cmd("floor", f"{a.floor} (floor)", a.floor, env, lambda d: True),
        Cmd("umm-normal", "umm-generator, normal boot", a.umm,
            dict(env, UMM_ROOT=root_normal), umm_normal_ok),
        Cmd("umm-redirect", "umm-generator, redirect (request)", a.umm,
            dict(env, UMM_ROOT=root_request), umm_request_ok),
        Cmd("sd-normal", "systemd-system-update-generator, no trigger", a.systemd, env, no_link),
    ]
    if a.dynamic:
        cmds.insert(3, Cmd("umm-dyn-normal", "  (ref.) umm-generator glibc-dynamic, normal", a.dynamic,
                           dict(env, UMM_ROOT=root_normal), umm_normal_ok))
    if not trigger_skip:
        cmds.append(Cmd("sd-trigger", f"systemd-system-update-generator, {TRIGGER}", a.systemd, env,
                        link_ends("/system-update.target"), trigger=True))
    by = {c.key: c for c in cmds}

    devnull = [(os.POSIX_SPAWN_OPEN, fd, "/dev/null", os.O_RDWR, 0) for fd in (0, 1, 2)]
    load_before = os.getloadavg()
    t_start = time.time()

    # --- wall time, interleaved ---------------------------------------------
    n = 0
    for r in range(a.warmup + a.rounds):
        k = r % len(cmds)
        for c in cmds[k:] + cmds[:k]:
            n += 1
            inv, dirs = fresh_dirs(out, n)
            ns, rc, maxrss = run_with_trigger(trig, c, lambda: spawn_timed(c, dirs, devnull))
            if rc != 0:
                die(f"{c.label} exited {rc}")
            if not c.check(dirs):
                die(f"{c.label}: unexpected output in {dirs} (round {r})")
            if r >= a.warmup:
                c.wall.append(ns)
                c.rss_ru.append(maxrss)
            shutil.rmtree(inv)

    # --- peak memory: /usr/bin/time -f %M, interleaved ------------------------
    gnu_time = "/usr/bin/time"
    rss_note = None
    if os.access(gnu_time, os.X_OK):
        for r in range(a.rss_runs):
            for c in cmds:
                n += 1
                inv, dirs = fresh_dirs(out, n)
                tf = os.path.join(out, "time.out")

                def run():
                    return subprocess.run([gnu_time, "-f", "%M", "-o", tf, c.path] + dirs, env=c.env,
                                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)
                p = run_with_trigger(trig, c, run)
                if p.returncode != 0 or not c.check(dirs):
                    die(f"{c.label} under {gnu_time}: exit {p.returncode} or unexpected output")
                with open(tf) as f:
                    c.rss.append(int(f.read().split()[-1]))
                shutil.rmtree(inv)
    else:
        rss_note = f"{gnu_time} missing: max RSS from wait4() of the timed runs"
        for c in cmds:
            c.rss = c.rss_ru

    # --- instructions: callgrind (deterministic), perf if the PMU is there ----
    valgrind = shutil.which("valgrind")
    ir_note = None
    if valgrind:
        for r in range(a.ir_runs):
            for c in cmds:
                n += 1
                inv, dirs = fresh_dirs(out, n)
                cg = os.path.join(out, "callgrind.out")

                def run():
                    return subprocess.run([valgrind, "--tool=callgrind", f"--callgrind-out-file={cg}",
                                           c.path] + dirs, env=c.env, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                p = run_with_trigger(trig, c, run)
                m = re.search(r"Collected\s*:\s*(\d+)", p.stderr)
                if p.returncode != 0 or not m or not c.check(dirs):
                    die(f"{c.label} under callgrind: exit {p.returncode}\n{p.stderr[-2000:]}")
                c.ir.append(int(m.group(1)))
                shutil.rmtree(inv)
                os.unlink(cg)
    else:
        ir_note = "valgrind missing: no instruction counts"

    perf = shutil.which("perf")
    perf_note = "perf not installed"
    if perf:
        p = subprocess.run([perf, "stat", "-x,", "-e", "instructions:u", "/bin/true"],
                           capture_output=True, text=True)
        if re.match(r"^\d+,", p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""):
            perf_note = None
            for r in range(21):
                for c in cmds:
                    n += 1
                    inv, dirs = fresh_dirs(out, n)

                    def run():
                        return subprocess.run([perf, "stat", "-x,", "-e", "instructions:u", c.path] + dirs,
                                              env=c.env, capture_output=True, text=True)
                    p = run_with_trigger(trig, c, run)
                    c.perf.append(int(p.stderr.strip().splitlines()[-1].split(",")[0]))
                    shutil.rmtree(inv)
        else:
            perf_note = "perf stat -e instructions: <not supported> here (no PMU in this VM)"

    load_after = os.getloadavg()
    elapsed = time.time() - t_start

    # --- sizes ---------------------------------------------------------------
    stripped = os.path.join(base, "umm-generator.stripped")
    strip = shutil.which("strip")
    size_of = a.size_of or a.umm
    if strip:
        p = subprocess.run([strip, "-o", stripped, size_of], capture_output=True, text=True)
        if p.returncode != 0:
            die(f"strip {size_of}: {p.stderr.strip()}")
        size_stripped = os.path.getsize(stripped)
    else:
        size_stripped = None
    size_built = os.path.getsize(size_of)

    def libs(path):
        p = subprocess.run(["ldd", path], capture_output=True, text=True)
        return [l.split()[0] for l in p.stdout.splitlines() if "=>" in l or l.strip().startswith("/")]

    def libs_size(path):
        total = 0
        p = subprocess.run(["ldd", path], capture_output=True, text=True)
        for l in p.stdout.splitlines():
            m = re.search(r"(/\S+) \(0x", l)
            if m and os.path.exists(m.group(1)):
                total += os.path.getsize(os.path.realpath(m.group(1)))
        return total

    # --- report --------------------------------------------------------------
    floor = by["floor"]
    us = lambda ns: ns / 1000.0

    def paired_minus_floor(c):
        return median([x - f for x, f in zip(c.wall, floor.wall)])

    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print("umm-generator benchmark")
    print(f"  date     {time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime(t_start))}")
    print(f"  machine  {os.cpu_count()} CPUs ({cpu}), kernel {platform.release()}, "
          f"load avg {load_before[0]:.2f} -> {load_after[0]:.2f}")
    print(f"  umm      {a.umm}" + (f" (reference: {a.dynamic})" if a.dynamic else ""))
    print(f"  systemd  {a.systemd}")
    print(f"  rounds   {a.rounds} interleaved (+{a.warmup} warm-up), order rotated each round; "
          f"output dirs on {'tmpfs ' if tmpfs else ''}{os.path.dirname(base)}; {elapsed:.0f} s in all")
    print(f"  cmdline  SYSTEMD_PROC_CMDLINE=\"{CMDLINE}\" for every command")
    if trigger_skip:
        print(f"  note     systemd generator with {TRIGGER} not measured: {trigger_skip}")
    for note in (rss_note, ir_note, perf_note):
        if note:
            print(f"  note     {note}")
    print()
    hdr = f"{'':46} {'wall med':>9} {'wall p90':>9} {'-floor':>8} {'instr (Ir)':>11} {'-floor':>10} {'maxRSS':>7} {'-floor':>7}"
    print(hdr)
    print(f"{'':46} {'µs':>9} {'µs':>9} {'µs':>8} {'callgrind':>11} {'':>10} {'KiB':>7} {'KiB':>7}")
    fl_ir = median(floor.ir) if floor.ir else None
    fl_rss = median(floor.rss)
    for c in cmds:
        ir = median(c.ir) if c.ir else None
        ir_s = f"{ir:>11,.0f}" if ir is not None else f"{'-':>11}"
        irf_s = f"{ir - fl_ir:>10,.0f}" if ir is not None else f"{'-':>10}"
        print(f"{c.label:46} {us(median(c.wall)):9.0f} {us(p90(c.wall)):9.0f} "
              f"{us(paired_minus_floor(c)):8.0f} {ir_s} {irf_s} {median(c.rss):7.0f} "
              f"{median(c.rss) - fl_rss:7.0f}")
    if any(c.perf for c in cmds):
        print("perf stat instructions:u (median): " +
              ", ".join(f"{c.key} {median(c.perf):,.0f}" for c in cmds))
    print()

    pairs = [("umm-normal", "sd-normal", "normal boot        (umm no-op  / systemd no trigger)")]
    if "sd-trigger" in by:
        pairs.append(("umm-redirect", "sd-trigger", "redirecting boot   (umm request / systemd /system-update)"))
    else:
        pairs.append(("umm-redirect", "sd-normal", "redirecting boot   (umm request / systemd no trigger)"))
    print("ratios umm / systemd        wall  wall-floor     Ir  Ir-floor  maxRSS  umm slower in")
    for u, s, label in pairs:
        cu, cs = by[u], by[s]
        wr = median(cu.wall) / median(cs.wall)
        wfr = paired_minus_floor(cu) / paired_minus_floor(cs)
        slower = sum(x > y for x, y in zip(cu.wall, cs.wall)) / len(cu.wall)
        if cu.ir and cs.ir:
            irr = f"{median(cu.ir) / median(cs.ir):6.2f}"
            irfr = f"{(median(cu.ir) - fl_ir) / (median(cs.ir) - fl_ir):9.2f}"
        else:
            irr, irfr = f"{'-':>6}", f"{'-':>9}"
        rr = median(cu.rss) / median(cs.rss)
        print(f"  {label}")
        print(f"  {'':24}{wr:6.2f}  {wfr:10.2f} {irr} {irfr}  {rr:6.2f}  {slower:6.1%} of rounds")
    print()
    if a.dynamic:
        print("ratios static / glibc-dynamic (normal boot): "
              f"wall {median(by['umm-normal'].wall) / median(by['umm-dyn-normal'].wall):.2f}, "
              + (f"Ir {median(by['umm-normal'].ir) / median(by['umm-dyn-normal'].ir):.2f}, " if by['umm-normal'].ir else "")
              + f"maxRSS {median(by['umm-normal'].rss) / median(by['umm-dyn-normal'].rss):.2f}, "
              f"size {os.path.getsize(a.umm) / os.path.getsize(a.dynamic):.2f}")
        print()
    print(f"umm-generator binary: {size_built:,} bytes as built"
          + (f", {size_stripped:,} bytes stripped ({size_stripped / 1048576:.2f} MiB)" if size_stripped else ""))
    print(f"  shared objects loaded (incl. ld.so): umm-generator {len(libs(a.umm))} ({libs_size(a.umm):,} bytes), "
          f"systemd-system-update-generator {len(libs(a.systemd))} ({libs_size(a.systemd):,} bytes), "
          f"{os.path.basename(a.floor)} {len(libs(a.floor))}")
    print()

    # --- sanity and targets --------------------------------------------------
    sane = True
    for c in cmds[1:]:
        if c.ir and median(c.ir) <= fl_ir:
            print(f"SANITY WARNING: {c.label} executes fewer instructions than the floor: the figures are not trustworthy")
            sane = False
    if sane:
        print("sanity: every command executes more instructions than the floor; every run's output was checked")

    umm_cases = [by["umm-normal"], by["umm-redirect"]]
    sd_cases = [by["sd-normal"]] + ([by["sd-trigger"]] if "sd-trigger" in by else [])
    results = []
    fl_med = median(floor.wall)
    worst_floor = max(median(c.wall) / fl_med for c in umm_cases)
    results.append((worst_floor <= 1.0,
                    f"wall time at most the floor's (median): worst umm / {os.path.basename(a.floor)} "
                    f"{worst_floor:.2f} <= 1.00"))
    worst = max(median(cu.wall) / median(by[s].wall) for cu, s in
                ((by[u], s) for u, s, _ in pairs))
    results.append((worst <= 0.25,
                    f"wall time at most a quarter of systemd's (median, same scenario): worst ratio {worst:.2f} <= 0.25"))
    umm_p90 = max(p90(c.wall) for c in umm_cases)
    sd_p90 = min(p90(c.wall) for c in sd_cases)
    results.append((umm_p90 <= sd_p90,
                    f"never more than systemd's: slowest umm p90 {us(umm_p90):.0f} µs <= "
                    f"fastest systemd p90 {us(sd_p90):.0f} µs"))
    umm_rss = max(median(c.rss) for c in umm_cases)
    sd_rss = min(median(c.rss) for c in sd_cases)
    results.append((umm_rss <= sd_rss,
                    f"no more peak memory: umm max RSS {umm_rss:.0f} KiB <= systemd {sd_rss:.0f} KiB"))
    if size_stripped is not None:
        results.append((size_stripped <= 524288,
                        f"stripped binary at most 0.5 MiB: {size_stripped:,} <= 524,288 bytes"))
    for ok, text in results:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")

    if not sane:
        return 1
    if a.check and not all(ok for ok, _ in results):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
