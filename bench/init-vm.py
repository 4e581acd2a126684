#!/usr/bin/env python3
"""Benchmark: what umm-init adds on a real boot, against a bare exec in the
same boots (qemu, TCG, cold guest page cache).

    bench/init-vm.py [--rounds N]      # N boots per case (default 3), as root

The package-installed Debian 12 image of the VM tests (tests/vm: the cached
base, the umm package installed by dpkg) gets three static C programs in
/bench. The kernel starts one of two stamps as init (`init=` on its command
line): each reads CLOCK_MONOTONIC and execs its target with the time in the
environment, `stamp-direct` the fake init, `stamp-umm` /usr/sbin/umm-init
(which, with `umm.init=/bench/fakeinit` on the command line, execs the fake
init after its decision). The fake init, PID 1, reads the clock first thing,
writes the difference and the UMM_DECISION it got to /dev/kmsg and powers the
guest off (at level 3, which `quiet` still prints). Cases, interleaved, a new VM (fresh overlay, cold page cache) for
every boot:

  baseline     init=/bench/stamp-direct                   stamp -> fake init
  normal       init=/bench/stamp-umm                      stamp -> umm-init -> fake init
  maintenance  init=/bench/stamp-umm umm=1                the same, MM asked for on the command line
  ..., cached   baseline and normal again, the stamp having read every file
               the two programs read (binaries, config, state) before the
               clock starts: what is left is CPU, no disk

"added" is the median of a case's boots minus the median of the baseline's.
Every instruction is emulated under TCG and every file comes from the virtual
disk, so the figures are far above a real machine's; the ratio to the
baseline (what one exec of a static binary costs in the same boots) is the
figure to compare with bench/init.py --pid1's (native, warm cache).

Needs what tests/vm/run.sh needs (it installs it: qemu, debootstrap, ...) and
the package (UMM_VM_DEB=FILE, else this version's in target/debian/, built by
scripts/deb.sh when missing); builds the base image when the cache has none.
"""

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "vm"))
sys.path.insert(0, str(HERE))
import init as bench_init  # noqa: E402  (cc, die)
import vmlib  # noqa: E402

# Both read the virtual disk's counters (reads completed, sectors read) from
# sysfs, which the initramfs has moved onto the real root by then.
IO_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
static int disk_reads(long long *ios, long long *sectors) {
    char b[256]; int fd = open("/sys/block/vda/stat", O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, b, sizeof b - 1); close(fd);
    if (n <= 0) return -1;
    b[n] = 0;
    long long merges;
    return sscanf(b, "%lld %lld %lld", ios, &merges, sectors) == 3 ? 0 : -1;
}
"""

STAMP_C = IO_C + r"""
#include <stdlib.h>
#include <time.h>
#ifdef WARM
/* Every file the exec'ed programs read, read once before the clock starts
   (the names that do not exist leave a negative dentry). */
static void warm(void) {
    static const char *files[] = {"/bench/fakeinit", "/usr/sbin/umm-init", "/usr/lib/umm/umm.toml",
        "/etc/umm.conf", "/etc/umm/umm.toml", "/etc/umm/umm.toml.d", "/var/lib/umm/state",
        "/sbin/init", "/run/systemd/container", 0};
    char b[65536];
    for (int i = 0; files[i]; i++) {
        int fd = open(files[i], O_RDONLY);
        if (fd < 0) continue;
        while (read(fd, b, sizeof b) > 0) {}
        close(fd);
    }
}
#endif
int main(int argc, char **argv) {
    struct timespec t; char buf[64]; long long ios = -1, sectors = -1;
#ifdef WARM
    warm();
#endif
    clock_gettime(CLOCK_MONOTONIC, &t);
    disk_reads(&ios, &sectors);
    snprintf(buf, sizeof buf, "%lld", (long long)t.tv_sec * 1000000000LL + t.tv_nsec);
    setenv("BENCH_T0", buf, 1);
    snprintf(buf, sizeof buf, "%lld %lld", ios, sectors);
    setenv("BENCH_IO0", buf, 1);
    argv[0] = TARGET;
    execv(TARGET, argv);
    return 127;
}
"""

FAKEINIT_C = IO_C + r"""
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <time.h>
int main(void) {
    struct timespec t; char line[160]; long long ios = -1, sectors = -1, ios0 = -1, sectors0 = -1;
    clock_gettime(CLOCK_MONOTONIC, &t);
    disk_reads(&ios, &sectors);
    long long now = (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
    const char *t0 = getenv("BENCH_T0"), *io0 = getenv("BENCH_IO0"), *d = getenv("UMM_DECISION");
    if (!io0 || sscanf(io0, "%lld %lld", &ios0, &sectors0) != 2 || ios0 < 0 || ios < 0) ios = ios0 = sectors = sectors0 = 0;
    int n = snprintf(line, sizeof line, "<3>umm-bench: exec-to-exec %lld ns decision %s reads %lld sectors %lld\n",
                     t0 ? now - atoll(t0) : -1LL, d ? d : "unset", ios - ios0, sectors - sectors0);
    int fd = open("/dev/kmsg", O_WRONLY);
    if (fd >= 0) { if (write(fd, line, n) < 0) {} close(fd); }
    sync();
    reboot(RB_POWER_OFF);
    return 1;
}
"""

UMM = "init=/bench/stamp-umm umm.init=/bench/fakeinit"
CASES = [
    ("base", "baseline: stamp -> fake init, PID 1", "init=/bench/stamp-direct", "unset"),
    ("normal", "umm-init as PID 1, normal", UMM, "normal"),
    ("maint", "umm-init as PID 1, maintenance (umm=1)", f"{UMM} umm=1", "maintenance:cmdline"),
    ("base-w", "baseline, files cached", "init=/bench/stamp-direct-warm", "unset"),
    ("normal-w", "umm-init as PID 1, normal, files cached",
     "init=/bench/stamp-umm-warm umm.init=/bench/fakeinit", "normal"),
]
# Which baseline each case is compared with.
BASE_OF = {"base": "base", "normal": "base", "maint": "base", "base-w": "base-w", "normal-w": "base-w"}
LINE = re.compile(r"umm-bench: exec-to-exec (-?\d+) ns decision (\S+) reads (\d+) sectors (\d+)")
OWN = re.compile(r"\(([0-9.]+) ms in umm-init\)")


def boot_once(base, img, name, args, want):
    """One cold boot to the fake init; returns (exec-to-exec ns, umm-init's own ms or None,
    disk reads, KiB read between the two execs)."""
    vm = vmlib.VM(base, img, name)
    try:
        vm.start(args)
        how = vm.wait_exit(vmlib.BOOT_TIMEOUT, "the fake init to power the guest off")
        text = vm.console_text()
        m = LINE.search(text)
        if how != "poweroff" or not m:
            raise vm._fail("no umm-bench line before the power-off")
        ns, decision = int(m.group(1)), m.group(2)
        if ns < 0 or decision != want:
            raise vm._fail(f"fake init got BENCH_T0 {ns} and UMM_DECISION={decision}, wanted {want}")
        own = OWN.search(text)
        return ns, float(own.group(1)) if own else None, int(m.group(3)), int(m.group(4)) // 2
    finally:
        vm.kill()  # the console log stays in the VM tests' log dir


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="boots per case (default 3)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        bench_init.die("needs root (the VM tests' image build: debootstrap, dpkg in a chroot)")
    try:
        vmlib.deb_path()
    except vmlib.VMError:
        print("bench: no package yet: scripts/deb.sh", file=sys.stderr)
        subprocess.run([str(REPO / "scripts/deb.sh")], check=True, stdout=sys.stderr)
    base = vmlib.build_base()
    with tempfile.TemporaryDirectory(prefix="umm-init-vm.") as tmp:
        progs = {}
        for name, src in (("stamp-direct", STAMP_C.replace("TARGET", '"/bench/fakeinit"')),
                          ("stamp-umm", STAMP_C.replace("TARGET", '"/usr/sbin/umm-init"')),
                          ("stamp-direct-warm", "#define WARM\n" + STAMP_C.replace("TARGET", '"/bench/fakeinit"')),
                          ("stamp-umm-warm", "#define WARM\n" + STAMP_C.replace("TARGET", '"/usr/sbin/umm-init"')),
                          ("fakeinit", FAKEINIT_C)):
            progs[f"bench/{name}"] = Path(tmp) / name
            bench_init.cc(src, str(progs[f"bench/{name}"]), tmp)
        img = vmlib.build_image(base, "init-bench", install=True, extra=progs)

    load_before, t_start = os.getloadavg(), time.time()
    res = {k: [] for k, *_ in CASES}
    own = {k: [] for k, *_ in CASES}
    io = {k: [] for k, *_ in CASES}
    for r in range(a.rounds):
        for i in range(len(CASES)):
            key, _, args, want = CASES[(i + r) % len(CASES)]
            ns, mine, reads, kib = boot_once(base, img, f"init-bench-{key}-{r}", args, want)
            res[key].append(ns)
            io[key].append((reads, kib))
            if mine is not None:
                own[key].append(mine)
            print(f"  round {r + 1}/{a.rounds} {key:8} {ns / 1e6:8.2f} ms, {reads} disk reads ({kib} KiB)",
                  file=sys.stderr, flush=True)
    elapsed, load_after = time.time() - t_start, os.getloadavg()

    print("umm-init benchmark: exec of umm-init -> exec of the real init, real boots (qemu TCG, cold page cache)")
    print(f"  date     {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(t_start))}")
    print(f"  machine  {os.cpu_count()} CPUs, kernel {platform.release()}, load avg {load_before[0]:.2f} -> "
          f"{load_after[0]:.2f}")
    print(f"  image    {img} (package {vmlib.deb_path().name})")
    print(f"  rounds   {a.rounds} boots per case, interleaved; {elapsed:.0f} s in all")
    print()
    print(f"{'':42} {'med ms':>8} {'min ms':>8} {'max ms':>8} {'added ms':>9} {'x base':>7} {'own line':>9}"
          f" {'reads':>6} {'KiB':>5}")
    for key, label, _, _ in CASES:
        xs, base_med = res[key], statistics.median(res[BASE_OF[key]])
        added = statistics.median(xs) - base_med
        mine = f"{statistics.median(own[key]):9.2f}" if own[key] else f"{'-':>9}"
        print(f"{label:42} {statistics.median(xs) / 1e6:8.2f} {min(xs) / 1e6:8.2f} {max(xs) / 1e6:8.2f} "
              f"{added / 1e6:9.2f} {added / base_med:7.2f} {mine} {statistics.median(r for r, _ in io[key]):6.0f}"
              f" {statistics.median(k for _, k in io[key]):5.0f}")
    print("  (x base: added / its baseline's median (the cached cases: the cached baseline), what one bare exec of a")
    print("   static init costs in the same boots;")
    print("   own line: umm-init's \"(N ms in umm-init)\" from its main to the exec, median, ms;")
    print("   reads, KiB: the virtual disk's completed reads and KiB read from exec to exec, median)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
