"""The harness itself: a test process that dies, even by SIGKILL (a CI
timeout, an operator's ^C twice), leaves no container running. nspawn gets
SIGTERM from the kernel when its parent dies (PR_SET_PDEATHSIG) and powers
its container off; with SIGKILL, as before, the container's init outlived it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import fleetlib

HERE = Path(__file__).resolve().parent

CHILD = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import fleetlib
f = fleetlib.Fleet("orphan", names=["orphan1"], layered_lower=True)
n = f["orphan1"]
n.start()
n.wait_ssh()
init = fleetlib._children(n.proc.pid)
print("READY", n.proc.pid, *init, f.net.bridge, f.lower, flush=True)
time.sleep(3600)
"""


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_a_killed_test_process_leaves_no_container():
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(HERE)], stdout=subprocess.PIPE, text=True)
    bridge = None
    try:
        line: list[str] = []
        for text in child.stdout:  # the harness's own log lines first
            print(text, end="")
            line = text.split()
            if line and line[0] == "READY":
                break
        assert line and line[0] == "READY", f"the child fleet did not come up (exit {child.poll()})"
        nspawn, inits, bridge = int(line[1]), [int(p) for p in line[2:-2]], line[-2]
        assert inits and all(alive(p) for p in inits), (nspawn, inits)
        t0 = time.monotonic()
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        deadline = t0 + 90
        while time.monotonic() < deadline and (alive(nspawn) or any(alive(p) for p in inits)):
            time.sleep(0.2)
        left = [p for p in (nspawn, *inits) if alive(p)]
        print(f"test process SIGKILLed: its container was gone {time.monotonic() - t0:.1f} s later")
        assert not left, f"still running 90 s after the test process was killed: {left}"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        # What the dead process's Fleet.close() would have removed.
        work = fleetlib.WORK / "orphan"
        subprocess.run(["umount", "-l", str(work / "orphan1" / "root")], stderr=subprocess.DEVNULL)
        for low in fleetlib.WORK.glob("lower-orphan-*"):  # also when the child died before READY
            if low.suffix not in (".upper", ".work"):
                subprocess.run(["umount", "-l", str(low)], stderr=subprocess.DEVNULL)
        for low in fleetlib.WORK.glob("lower-orphan-*"):
            subprocess.run(["rm", "-rf", "--one-file-system", str(low)], stderr=subprocess.DEVNULL)
        subprocess.run(["rm", "-rf", "--one-file-system", str(work)], stderr=subprocess.DEVNULL)
        if bridge:
            subprocess.run(["ip", "link", "del", bridge], stderr=subprocess.DEVNULL)
