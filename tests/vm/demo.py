#!/usr/bin/env python3
"""The README's demo: a throwaway VM goes into maintenance mode and back.
Run it through tests/vm/demo.sh (which builds what it needs first)."""

from __future__ import annotations

import sys
import time

import vmlib


def say(msg: str) -> None:
    print(f"\n\033[1m==> {msg}\033[0m", flush=True)


def guest(vm: vmlib.VM, command: str) -> None:
    """Shows a command run inside the guest and its output, as a human would see it."""
    print(f"  guest# {command}", flush=True)
    r = vm.ssh(command, check=False)
    for line in (r.stdout + r.stderr).rstrip().splitlines():
        print(f"    {line}")


def main() -> int:
    say("Preparing: the cached Debian 12 base image, then a disk with this build's umm installed")
    base = vmlib.build_base()
    image = vmlib.build_image(base, "demo", install=vmlib.install_requested())
    vm = vmlib.VM(base, image, "demo")
    try:
        say("Booting a throwaway VM (qemu, software emulation: ~20-30 s)")
        t = vm.boot()
        vm.wait_active("multi-user.target")
        print(f"  sshd answered {t:.0f} s after power-on; this is a normal boot:")
        guest(vm, "systemctl is-active multi-user.target demo-app.service")
        guest(vm, "umm status")

        say("Requesting maintenance mode: 'umm on' records the request and reboots")
        t0 = time.monotonic()
        vm.reboot_via("umm on")
        print("  the guest rebooted; waiting for maintenance mode...")
        vm.wait_ssh()
        vm.wait_active("umm.target")
        print(f"  maintenance mode reached {time.monotonic() - t0:.0f} s after 'umm on' (boot {vm.boots})")
        say("Inside maintenance mode: only the network and sshd run, the workload is held back")
        guest(vm, "umm status")
        guest(vm, "systemctl is-active umm.target multi-user.target demo-app.service ssh.service")
        guest(vm, "ip -4 -o addr show dev eth0")

        say("Resuming: 'umm off' continues the boot to the normal target, without a reboot")
        boot_id = vm.boot_id()
        guest(vm, "umm off")
        vm.wait_active("multi-user.target")
        vm.wait_active("demo-app.service")
        same = vm.boot_id() == boot_id
        guest(vm, "systemctl is-active multi-user.target demo-app.service")
        guest(vm, "umm status")
        print(f"  same boot as before 'umm off': {'yes' if same else 'NO'}")

        say("Shutting the VM down")
        vm.ssh_background("systemctl poweroff")
        vm.wait_exit(what="the guest to power off")
        print(f"  done. Console logs: {vm.dir}/console-*.log")
        return 0 if same else 1
    finally:
        vm.kill()


if __name__ == "__main__":
    sys.exit(main())
