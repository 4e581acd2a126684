#!/usr/bin/env python3
"""Timing figures for issue 4: does umm slow a normal boot, and is MM reached
no later than the normal target?

  tests/vm/timing.py [--reps N] [--out docs/vm-timings.md] [--plain-only]

Boots the same base image without umm and with umm (normal boot), then the umm
image with umm=1 (maintenance mode), then runs `umm off` there. Per boot:
  * kernel+initrd and userspace times from `systemd-analyze time`
  * the target's ActiveEnterTimestampMonotonic (seconds since the kernel started)
  * host seconds from qemu start to the first ssh answer
`umm off`: how long the command takes, and from its start until
multi-user.target is active (guest CLOCK_MONOTONIC). Medians over --reps.
Run it after `scripts/build-release.sh` (tests/vm/run.sh does that).
"""

from __future__ import annotations

import argparse
import re
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import vmlib


def analyze(vm: vmlib.VM) -> tuple[float | None, float | None]:
    """(kernel+initrd s, userspace s) from systemd-analyze time."""
    out = vm.ssh("systemd-analyze time", check=False).stdout
    def grab(label):
        m = re.search(r"([0-9.]+(?:min [0-9.]+)?)(ms|s) \(" + label + r"\)", out)
        if not m:
            return None
        v = m.group(1)
        if "min" in v:
            mins, secs = v.split("min ")
            return float(mins) * 60 + float(secs)
        return float(v) / (1000 if m.group(2) == "ms" else 1)
    k = grab("kernel")
    i = grab("initrd")
    return ((k or 0) + (i or 0) if k is not None else None), grab("userspace")


def measure_boot(vm: vmlib.VM, target: str, extra: str = "") -> dict:
    vm.start(extra)
    t_ssh = vm.wait_ssh()
    vm.wait_active(target)
    vm.wait_boot_settled()
    kernel, user = analyze(vm)
    return {"target": target, "reached_s": vm.active_enter_s(target), "ssh_s": t_ssh,
            "kernel_s": kernel, "userspace_s": user}


def measure_off(vm: vmlib.VM) -> dict:
    out = vm.out("a=$(cut -d' ' -f1 /proc/uptime); umm off >/dev/null; b=$(cut -d' ' -f1 /proc/uptime); echo $a $b")
    a, b = (float(x) for x in out.split())
    vm.wait_active("multi-user.target")
    vm.wait_boot_settled()
    reached = vm.active_enter_s("multi-user.target")
    return {"command_s": b - a, "to_multi_user_s": reached - a}


UMM_UNITS = re.compile(r"\b(umm[-.@][\w@.-]*|rebootmgr[\w@.-]*)")


def unit_view(vm: vmlib.VM) -> dict:
    """The normal boot's per-unit view: `systemd-analyze critical-chain` of
    multi-user.target, and umm's and rebootmgr's units in `blame`."""
    chain = vm.out("systemd-analyze critical-chain --no-pager multi-user.target")
    blame = vm.out("systemd-analyze blame --no-pager")
    ours = [line.strip() for line in blame.splitlines() if UMM_UNITS.search(line)]
    return {"chain": chain, "on_chain": sorted(set(UMM_UNITS.findall(chain))), "blame": ours}


def med(rows: list[dict], key: str) -> str:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return f"{statistics.median(vals):.2f}" if vals else "n/a"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--out", default=str(vmlib.REPO / "docs" / "vm-timings.md"))
    ap.add_argument("--plain-only", action="store_true", help="only the image without umm (harness check)")
    args = ap.parse_args()

    base = vmlib.build_base()
    plain = vmlib.build_image(base, "timing-plain", install=False)
    umm = None if args.plain_only else vmlib.build_image(base, "timing-umm", install=True)

    rows: dict[str, list[dict]] = {"plain": [], "umm-normal": [], "umm-mm": [], "umm-off": []}
    views: list[dict] = []  # per normal boot with umm: critical chain, blame
    for rep in range(args.reps):
        with vmlib.VM(base, plain, f"timing-plain-{rep}") as vm:
            rows["plain"].append(measure_boot(vm, "multi-user.target"))
        if umm is None:
            continue
        with vmlib.VM(base, umm, f"timing-umm-{rep}") as vm:
            rows["umm-normal"].append(measure_boot(vm, "multi-user.target"))
            views.append(unit_view(vm))
            vm.ssh_background("systemctl reboot")
            if vm.wait_exit() != "reboot":
                raise vmlib.VMError("the guest powered off instead of rebooting")
            rows["umm-mm"].append(measure_boot(vm, "umm.target", "umm=1"))
            rows["umm-off"].append(measure_off(vm))
        print(f"rep {rep + 1}/{args.reps}: " + ", ".join(f"{k}={v[-1]}" for k, v in rows.items() if v), flush=True)

    cmd = "tests/vm/timing.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    accel = "KVM" if os.environ.get("UMM_VM_KVM") == "1" else "TCG (software emulation)"
    lines = [
        "# VM boot timings",
        "",
        f"Produced by `{cmd.strip()}` on {time.strftime('%Y-%m-%d %H:%M %Z')}: qemu {accel}, "
        f"{os.environ.get('UMM_VM_SMP', '1')} vCPU, {os.environ.get('UMM_VM_MEM', '1024')} MiB, "
        f"host {platform.node()} ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}). "
        f"Medians of {args.reps} boots each; absolute numbers depend on the host, compare the rows.",
        "",
        "| boot | target | target reached (s since kernel start) | kernel+initrd (s) | userspace (s) | power-on to ssh (s) |",
        "|---|---|---|---|---|---|",
    ]
    names = {"plain": "normal, image without umm", "umm-normal": "normal, umm installed",
             "umm-mm": "maintenance mode (umm=1)"}
    for key, label in names.items():
        r = rows[key]
        if r:
            lines.append(f"| {label} | `{r[0]['target']}` | {med(r, 'reached_s')} | {med(r, 'kernel_s')} | "
                         f"{med(r, 'userspace_s')} | {med(r, 'ssh_s')} |")
    if rows["plain"] and rows["umm-normal"] and rows["umm-mm"]:
        plain_s = float(med(rows["plain"], "userspace_s"))
        normal_s = float(med(rows["umm-normal"], "userspace_s"))
        mm_s = float(med(rows["umm-mm"], "userspace_s"))
        lines += ["", "Ratios of median userspace times (same run, interleaved):", "",
                  f"- normal boot with umm / without umm: {normal_s / plain_s:.2f} "
                  "(goal: no measurable cost, i.e. within the boot-to-boot spread in the raw figures)",
                  f"- maintenance mode reached / normal boot with umm: {mm_s / normal_s:.2f} (goal: at most 1.00)"]
    if rows["umm-off"]:
        lines += ["", f"`umm off` in maintenance mode: the command returns after {med(rows['umm-off'], 'command_s')} s; "
                  f"`multi-user.target` is active {med(rows['umm-off'], 'to_multi_user_s')} s after it started."]
    if views:
        on_chain = sorted({u for v in views for u in v["on_chain"]})
        lines += ["", "Per-unit view of the normal boots with umm (`systemd-analyze critical-chain multi-user.target`,"
                  " `systemd-analyze blame`):", "",
                  f"- umm's or rebootmgr's units on the critical chain of multi-user.target: "
                  f"{', '.join(on_chain) if on_chain else 'none'} (in {len(views)} boots)",
                  "- their lines in `blame` (time each unit took to start; off the chain they delay nothing):", ""]
        for i, v in enumerate(views):
            lines.append(f"  - boot {i + 1}: " + ("; ".join(v["blame"]) if v["blame"] else "none listed"))
        lines += ["", "The critical chain of the last of them:", "", "```", views[-1]["chain"].strip(), "```"]
    lines += ["", "Raw figures:", "", "```"]
    for k, v in rows.items():
        for r in v:
            lines.append(f"{k}: " + ", ".join(f"{a}={b:.2f}" if isinstance(b, float) else f"{a}={b}" for a, b in r.items()))
    lines += ["```", ""]
    text = "\n".join(lines)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(f"written to {args.out}")
    if views and any(v["on_chain"] for v in views):
        print("umm's units are on the critical chain of a normal boot (see above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
