"""Boot driver for the umm VM tests: images, qemu, ssh, reboots.

One `VM` is one throwaway qcow2 overlay on a shared raw image. `VM.start()`
boots it once; the guest rebooting makes qemu exit (`-no-reboot`), and the
driver starts qemu again on the same disk, counting boots. Every wait has a
timeout and fails with a `VMError` naming the console log of that boot.

Environment:
  UMM_VM_CACHE          base rootfs cache (default /var/cache/umm-vm), see build-base.sh
  UMM_VM_WORK           per-run images, overlays and logs (default tests/vm/.cache)
  UMM_VM_KVM=1          use KVM instead of TCG (KVM guests hang on some hosts)
  UMM_VM_TIMEOUT_SCALE  multiply every timeout (slow or loaded machines)
  UMM_VM_NO_INSTALL=1   build the "umm" image without installing umm (harness
                        development only: scenario tests then fail)
  UMM_VM_SMP, UMM_VM_MEM  guest CPUs (default 1) and MiB (default 1024)
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VM_DIR = REPO / "tests" / "vm"
WORK = Path(os.environ.get("UMM_VM_WORK") or (VM_DIR / ".cache"))
LOG_ROOT = WORK / "logs"
IMAGE_DIR = WORK / "images"

SCALE = float(os.environ.get("UMM_VM_TIMEOUT_SCALE", "1") or 1)
BOOT_TIMEOUT = 300 * SCALE  # qemu start -> sshd answers (a TCG boot takes ~20 s idle)
REBOOT_TIMEOUT = 180 * SCALE  # reboot requested -> qemu exits
UNIT_TIMEOUT = 180 * SCALE
SSH_CMD_TIMEOUT = 120 * SCALE

BASE_CMDLINE = "root=/dev/vda rw console=ttyS0 net.ifnames=0"


class VMError(AssertionError):
    """A wait timed out or the guest did something unexpected."""


def _log(msg: str) -> None:
    print(f"[vm {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------- images


_base_locks: dict[Path, object] = {}


def build_base() -> Path:
    """Runs build-base.sh (a no-op when the cache is current); returns the cache dir.
    Holds a shared flock on base-HASH.lock for the life of this process, so another
    checkout's build-base.sh does not delete the base while we boot from it."""
    for _ in range(3):
        out = subprocess.run(
            [str(VM_DIR / "build-base.sh")], check=True, stdout=subprocess.PIPE, text=True
        ).stdout.strip().splitlines()
        base = Path(out[-1])
        if base not in _base_locks:
            f = open(f"{base}.lock", "a")
            fcntl.flock(f, fcntl.LOCK_SH)
            _base_locks[base] = f
        if (base / "ok").exists():  # not deleted between the build and the lock
            break
    for f in ("rootfs", "vmlinuz", "initrd.img", "id_ed25519", "ok"):
        if not (base / f).exists():
            raise VMError(f"base cache {base} lacks {f}: remove it and rerun build-base.sh")
    return base


def install_requested() -> bool:
    return os.environ.get("UMM_VM_NO_INSTALL", "") not in ("1", "yes", "true")


def deb_path() -> Path:
    """The package under test: UMM_VM_DEB, else this version's build in target/debian/
    (`make deb`; tests/vm/run.sh builds it)."""
    if os.environ.get("UMM_VM_DEB"):
        return Path(os.environ["UMM_VM_DEB"])
    m = re.search(r'^version = "([^"]+)"', (REPO / "Cargo.toml").read_text(), re.M)
    debs = sorted((REPO / "target" / "debian").glob(f"umm_{m.group(1) if m else '*'}_*.deb"))
    if len(debs) != 1:
        raise VMError(f"expected one package target/debian/umm_<version>_<arch>.deb, found {debs}: run 'make deb'")
    return debs[0]


def install_deb(tree: Path, deb: Path | None = None, action: str = "install") -> str:
    """Installs (or removes/purges) the package in a root tree as an admin would: the real
    dpkg in a chroot, maintainer scripts included (systemd does not run there, so they do
    what they do in an image build: preset, no daemon-reload). Returns dpkg's output."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    if action == "install":
        deb = deb or deb_path()
        shutil.copy(deb, tree / "tmp" / deb.name)
        cmd = ["dpkg", "-i", f"/tmp/{deb.name}"]
    else:
        cmd = ["dpkg", "--purge" if action == "purge" else "--remove", "umm"]
    r = subprocess.run(["chroot", str(tree), *cmd], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if deb is not None:
        (tree / "tmp" / deb.name).unlink(missing_ok=True)
    if r.returncode != 0:
        raise VMError(f"chroot {tree} {' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}")
    if action == "install" and not (tree / "usr/sbin/umm").exists():
        raise VMError(f"dpkg -i ran but {tree}/usr/sbin/umm does not exist:\n{r.stdout}")
    return r.stdout


def install_umm(tree: Path) -> None:
    """Installs this build's umm into the root tree `tree`, as an operator would: its package."""
    install_deb(tree)


def build_image(base: Path, name: str, install: bool, size: str = "2G",
                extra: dict[str, Path] | None = None) -> Path:
    """Copies the base rootfs, installs the umm package into it when asked (dpkg -i in a
    chroot: install_deb), and turns the tree into a raw ext4 image (no mounts needed)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    d = IMAGE_DIR / worker
    d.mkdir(parents=True, exist_ok=True)
    tree = d / f"{name}.tree"
    img = d / f"{name}.img"
    if tree.exists():
        subprocess.run(["rm", "-rf", "--one-file-system", str(tree)], check=True)
    t0 = time.monotonic()
    subprocess.run(["cp", "-a", "--reflink=auto", str(base / "rootfs"), str(tree)], check=True)
    if install:
        install_umm(tree)
    for rel, src in (extra or {}).items():  # files to put in the image, e.g. packages
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, tree / rel)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "umm-root", "-d", str(tree), str(img), size], check=True)
    subprocess.run(["rm", "-rf", "--one-file-system", str(tree)], check=True)
    _log(f"image {img} ({'umm installed' if install else 'plain'}) in {time.monotonic() - t0:.1f} s")
    return img


def build_variant(name: str) -> Path:
    """Runs build-variant.sh NAME (cached); returns the variant's dir (rootfs/, ok)."""
    out = subprocess.run([str(VM_DIR / "build-variant.sh"), name], check=True,
                         stdout=subprocess.PIPE, text=True).stdout.strip().splitlines()
    return Path(out[-1])


def make_tree(variant: Path, name: str) -> Path:
    """A copy of a variant's rootfs with this build's umm package installed (install_umm)."""
    d = IMAGE_DIR / "initsystems"
    d.mkdir(parents=True, exist_ok=True)
    tree = d / f"{name}.tree"
    if tree.exists():
        subprocess.run(["rm", "-rf", "--one-file-system", str(tree)], check=True)
    subprocess.run(["cp", "-a", "--reflink=auto", str(variant / "rootfs"), str(tree)], check=True)
    install_umm(tree)
    return tree


PART_OFFSET = 1 << 20  # the first partition starts at sector 2048, like the installers'


def make_disk_image(tree: Path, img: Path, size_mib: int = 2048) -> Path:
    """A partitioned disk: an MBR (msdos) table with one bootable Linux partition
    from sector 2048 (the gap before it is where grub-install embeds core.img),
    holding an ext4 file system made from `tree` (`mkfs.ext4 -E offset`, no mounts).
    The MBR's boot code is left empty: grub-install in the guest writes it."""
    sectors = (size_mib << 20) // 512 - PART_OFFSET // 512
    with open(img, "wb") as f:
        f.truncate(size_mib << 20)
        mbr = bytearray(512)
        mbr[440:444] = (0x756D6D31).to_bytes(4, "little")  # disk signature
        entry = bytes([0x80, 0xFE, 0xFF, 0xFF, 0x83, 0xFE, 0xFF, 0xFF])  # active, CHS unused, Linux
        entry += (PART_OFFSET // 512).to_bytes(4, "little") + sectors.to_bytes(4, "little")
        mbr[446:462] = entry
        mbr[510:512] = b"\x55\xaa"
        f.write(mbr)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "umm-root", "-E", f"offset={PART_OFFSET}",
                    "-d", str(tree), str(img), f"{sectors // 2}k"], check=True)
    return img


# --------------------------------------------------------------------------- qemu


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent(sig: int = signal.SIGKILL) -> None:
    # qemu must not outlive the test process, even when it is SIGKILLed.
    # (systemd-nspawn gets SIGTERM instead: it then shuts its container down;
    # killed, it would leave the container's init running.)
    try:
        ctypes.CDLL("libc.so.6").prctl(1, sig)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    os.setpgrp()


class VM:
    """A throwaway guest: a qcow2 overlay on `image`, booted as often as needed."""

    def __init__(self, base: Path, image: Path, name: str, root: str = "/dev/vda"):
        self.base = base
        self.root = root
        # False: qemu boots the cached kernel/initrd (-kernel, -append). True: the
        # firmware boots the disk (a boot loader installed on it), no -kernel.
        self.from_disk = False
        self.image = image
        self.name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:100]
        self.dir = LOG_ROOT / self.name
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        self.disk = self.dir / "disk.qcow2"
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image), "-F", "raw", str(self.disk)],
            check=True,
        )
        self.key = base / "id_ed25519"
        self.boots = 0
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.console = self.dir / "console-0.log"
        self.started_at = 0.0
        self.cmdline = ""
        self._lines: list[str] = []
        self._reader: threading.Thread | None = None
        self._ssh_procs: list[subprocess.Popen] = []

    # -- lifecycle

    def start(self, extra_args: str = "") -> None:
        """Boots once; `extra_args` are appended to the kernel command line for this boot only."""
        if self.running():
            raise VMError(f"{self.name}: start() while qemu is still running")
        self.boots += 1
        self.console = self.dir / f"console-{self.boots}.log"
        if self.from_disk and extra_args:
            raise VMError(f"{self.name}: extra kernel args {extra_args!r} on a boot from disk")
        cmdline = BASE_CMDLINE.replace("root=/dev/vda ", f"root={self.root} ")
        self.cmdline = "" if self.from_disk else f"{cmdline} {extra_args}".strip()
        kernel = [] if self.from_disk else [
            "-kernel", str(self.base / "vmlinuz"),
            "-initrd", str(self.base / "initrd.img"),
            "-append", self.cmdline,
        ]
        kvm = os.environ.get("UMM_VM_KVM", "") == "1"
        for attempt in range(3):
            self.port = _free_port()
            cmd = [
                "qemu-system-x86_64",
                "-accel", "kvm" if kvm else "tcg",
                *(["-cpu", "host"] if kvm else []),
                "-m", os.environ.get("UMM_VM_MEM", "1024"),
                "-smp", os.environ.get("UMM_VM_SMP", "1"),
                "-nodefaults", "-nographic", "-monitor", "none", "-serial", "stdio",
                "-no-reboot",
                *kernel,
                "-drive", f"file={self.disk},format=qcow2,if=virtio,cache=unsafe",
                "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{self.port}-:22",
                "-device", "virtio-net-pci,netdev=n0",
                "-device", "virtio-rng-pci",
            ]
            self._lines = []
            self.started_at = time.monotonic()
            errf = open(self.dir / f"qemu-{self.boots}.stderr", "w")
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errf,
                preexec_fn=_die_with_parent,
            )
            errf.close()
            self._reader = threading.Thread(target=self._read_console, args=(self.proc, self.console), daemon=True)
            self._reader.start()
            time.sleep(0.5)
            if self.proc.poll() is not None and "hostfwd" in self.qemu_stderr():
                _log(f"{self.name}: port {self.port} taken, retrying")
                continue
            break
        (self.dir / f"qemu-{self.boots}.cmd").write_text(shlex.join(cmd) + "\n")
        _log(f"{self.name}: boot {self.boots} (ssh port {self.port}, console {self.console})"
             + (" from disk" if self.from_disk else "")
             + (f" extra args: {extra_args}" if extra_args else ""))

    def _read_console(self, proc: subprocess.Popen, path: Path) -> None:
        # Every console line gets the host time since qemu started: the only
        # clock that covers firmware, kernel and userspace alike.
        t0 = self.started_at
        with open(path, "w", errors="replace") as f:
            buf = b""
            while True:
                chunk = proc.stdout.read1(4096) if proc.stdout else b""
                if not chunk:
                    break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for raw in lines:
                    line = raw.decode("utf-8", "replace").replace("\r", "")
                    line = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", line)
                    self._lines.append(line)
                    f.write(f"[{time.monotonic() - t0:8.3f}] {line}\n")
                f.flush()
            if buf:
                line = buf.decode("utf-8", "replace").replace("\r", "")
                self._lines.append(line)
                f.write(f"[{time.monotonic() - t0:8.3f}] {line}\n")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def qemu_stderr(self) -> str:
        p = self.dir / f"qemu-{self.boots}.stderr"
        return p.read_text(errors="replace") if p.exists() else ""

    def console_text(self) -> str:
        return "\n".join(self._lines)

    def _fail(self, what: str) -> VMError:
        tail = "\n".join(self._lines[-25:])
        err = self.qemu_stderr().strip()
        return VMError(
            f"{self.name} boot {self.boots}: {what}\n"
            f"  console log: {self.console}\n"
            + (f"  qemu stderr: {err}\n" if err else "")
            + f"  last console lines:\n{tail}"
        )

    def kill(self) -> None:
        """Stops qemu (if running) and reaps stray ssh clients. Safe to call twice."""
        for p in self._ssh_procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        self._ssh_procs.clear()
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            if self._reader:
                self._reader.join(5)

    close = kill

    def __enter__(self) -> "VM":
        return self

    def __exit__(self, *exc) -> None:
        self.kill()

    # -- waiting for qemu to exit (the guest rebooted or powered off)

    def wait_exit(self, timeout: float = REBOOT_TIMEOUT, what: str = "the guest to reboot") -> str:
        """Waits for qemu to exit; returns 'poweroff' or 'reboot' (from the console)."""
        assert self.proc is not None
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise self._fail(f"timed out after {timeout:.0f} s waiting for {what}") from None
        if self._reader:
            self._reader.join(5)
        for p in self._ssh_procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self._ssh_procs.clear()
        if self.proc.returncode != 0:
            raise self._fail(f"qemu exited with status {self.proc.returncode}")
        return "poweroff" if "reboot: Power down" in self.console_text() else "reboot"

    def expect_reboot(self, timeout: float = REBOOT_TIMEOUT, extra_args: str = "",
                      what: str = "the guest to reboot") -> None:
        """The guest is about to reboot: waits for qemu to exit, then boots the same disk."""
        how = self.wait_exit(timeout, what)
        if how != "reboot":
            raise self._fail(f"guest powered off while waiting for {what}")
        self.start(extra_args)

    def reboot_via(self, command: str, extra_args: str = "", timeout: float = REBOOT_TIMEOUT) -> str:
        """Runs `command` (which must reboot the guest), waits for qemu to exit and boots
        the same disk again (`extra_args` for that boot only). Fails early, with the
        command's output, when the command exits non-zero and the guest stays up."""
        p = self.ssh_background(command)
        t0 = time.monotonic()
        failed_at = None
        while self.running():
            if p.poll() not in (None, 0, 255) and failed_at is None:
                failed_at = time.monotonic()
            if failed_at is not None and time.monotonic() - failed_at > 10:
                out = p.stdout.read() if p.stdout else ""
                raise self._fail(f"{command!r} exited {p.returncode} and the guest did not reboot:\n{out}")
            if time.monotonic() - t0 > timeout:
                raise self._fail(f"timed out after {timeout:.0f} s waiting for {command!r} to reboot the guest")
            time.sleep(0.5)
        out = ""
        try:
            out, _ = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
        how = self.wait_exit(30)
        if how != "reboot":
            raise self._fail(f"{command!r} powered the guest off instead of rebooting it")
        self.start(extra_args)
        return out or ""

    # -- ssh

    def _ssh_argv(self, command: str, connect_timeout: int = 10) -> list[str]:
        return [
            "ssh", "-q", "-p", str(self.port), "-i", str(self.key),
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-o", f"ConnectTimeout={connect_timeout}", "-o", "ServerAliveInterval=5",
            "-o", "ServerAliveCountMax=6", "-o", "IdentitiesOnly=yes",
            "root@127.0.0.1", command,
        ]

    def ssh(self, command: str, check: bool = True, timeout: float = SSH_CMD_TIMEOUT) -> subprocess.CompletedProcess:
        """Runs `command` in the guest's root shell; returns the CompletedProcess (text)."""
        if not self.running():
            raise self._fail(f"ssh {command!r}: qemu is not running")
        try:
            r = subprocess.run(self._ssh_argv(command), stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise self._fail(f"ssh {command!r} timed out after {timeout:.0f} s") from None
        if check and r.returncode != 0:
            raise self._fail(f"ssh {command!r} failed ({r.returncode}):\n"
                             f"  stdout: {r.stdout.strip()}\n  stderr: {r.stderr.strip()}")
        return r

    def out(self, command: str, timeout: float = SSH_CMD_TIMEOUT) -> str:
        return self.ssh(command, timeout=timeout).stdout.strip()

    def ssh_background(self, command: str) -> subprocess.Popen:
        """Starts `command` (e.g. one that reboots the guest) without waiting for it."""
        p = subprocess.Popen(self._ssh_argv(command), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._ssh_procs.append(p)
        return p

    def wait_ssh(self, timeout: float = BOOT_TIMEOUT) -> float:
        """Waits until sshd answers; returns seconds since qemu started.
        Raises VMError when qemu exits first (the guest rebooted)."""
        deadline = self.started_at + timeout
        while True:
            if not self.running():
                raise self._fail("qemu exited (guest rebooted or powered off) while waiting for ssh")
            try:
                r = subprocess.run(self._ssh_argv("true", connect_timeout=5), stdin=subprocess.DEVNULL,
                                   capture_output=True, timeout=20)
                if r.returncode == 0:
                    return time.monotonic() - self.started_at
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() > deadline:
                raise self._fail(f"sshd did not answer within {timeout:.0f} s")
            time.sleep(1)

    def wait_ssh_or_exit(self, timeout: float = BOOT_TIMEOUT) -> str:
        """For boots that may crash: returns 'ssh' when sshd answers, 'exit' when qemu exits first."""
        try:
            self.wait_ssh(timeout)
            return "ssh"
        except VMError:
            if self.running():
                raise
            if self.wait_exit(30) != "reboot":
                raise self._fail("guest powered off instead of rebooting") from None
            return "exit"

    def boot(self, extra_args: str = "") -> float:
        """start() + wait_ssh(); returns seconds to ssh."""
        self.start(extra_args)
        return self.wait_ssh()

    # -- guest state

    def boot_id(self) -> str:
        return self.out("cat /proc/sys/kernel/random/boot_id")

    def is_active(self, unit: str) -> str:
        return self.ssh(f"systemctl is-active {shlex.quote(unit)}", check=False).stdout.strip()

    def wait_active(self, unit: str, timeout: float = UNIT_TIMEOUT) -> float:
        """Waits until `unit` is active in the guest; returns seconds waited."""
        t0 = time.monotonic()
        state = ""
        while True:
            state = self.is_active(unit)
            if state == "active":
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                jobs = self.ssh("systemctl list-jobs --no-pager", check=False).stdout
                raise self._fail(f"{unit} not active after {timeout:.0f} s (last state {state!r}); jobs:\n{jobs}")
            time.sleep(1)

    def wait_boot_settled(self, timeout: float = UNIT_TIMEOUT) -> str:
        """Waits until systemd has no boot jobs left; returns is-system-running's answer."""
        r = self.ssh(f"timeout {int(timeout)} systemctl is-system-running --wait", check=False,
                     timeout=timeout + 30)
        state = r.stdout.strip()
        if state not in ("running", "degraded"):
            raise self._fail(f"boot did not settle: is-system-running says {state!r}")
        return state

    def active_enter_s(self, unit: str) -> float | None:
        """Seconds since kernel start (CLOCK_MONOTONIC) when `unit` last became active."""
        v = self.out(f"systemctl show -P ActiveEnterTimestampMonotonic {shlex.quote(unit)}")
        return int(v) / 1e6 if v and v != "0" else None

    def uptime(self) -> float:
        return float(self.out("cut -d' ' -f1 /proc/uptime"))

    def analyze_time(self) -> str:
        return self.ssh("systemd-analyze time", check=False).stdout.strip()

    def console_time(self, pattern: str) -> float | None:
        """Host seconds since qemu start of the first console line matching `pattern` (this boot)."""
        rx = re.compile(r"^\[\s*([0-9.]+)\] (.*)$")
        for line in self.console.read_text(errors="replace").splitlines():
            m = rx.match(line)
            if m and re.search(pattern, m.group(2)):
                return float(m.group(1))
        return None

    def active_units(self, unit_type: str = "service") -> set[str]:
        out = self.out(f"systemctl list-units --type={unit_type} --state=active --no-legend --plain --no-pager")
        return {line.split()[0] for line in out.splitlines() if line.strip()}

    # -- umm

    def umm_status(self) -> dict:
        r = self.ssh("umm status --json", check=False)
        try:
            st = json.loads(r.stdout)
        except json.JSONDecodeError:
            raise self._fail(f"umm status --json did not print JSON (exit {r.returncode}):\n"
                             f"  stdout: {r.stdout!r}\n  stderr: {r.stderr!r}") from None
        if not isinstance(st, dict):
            raise self._fail(f"umm status --json printed {st!r}, not an object")
        return st
