"""A fleet of real systemd boots in systemd-nspawn containers, for what needs
several nodes but not a kernel of its own: Consul clusters, rolling reboots,
maintenance mode seen from the cluster.

Each node is `systemd-nspawn -b` of the VM suite's cached Debian 12 base with
umm installed from its package (vmlib.install_umm: dpkg -i in a chroot, as the VM images get it), the Consul
binary the Rust tests use, and a consul.service; its root is an overlayfs
(shared read-only lower tree, an upper dir per node), its network a veth on a
bridge this harness creates (addresses 10.213.<n>.0/24, its own test network;
nothing outside it is reached). A node's `systemctl reboot` ends its nspawn
process with status 133 and the harness boots it again on the same upper dir
(a new boot id: nspawn gives every boot its own); `power_cut()` SIGKILLs the
container's init, which tears the whole container down at once.

Environment: UMM_FLEET_WORK (default tests/fleet/.cache), UMM_VM_CACHE (the
base image cache, see tests/vm/build-base.sh), CONSUL_BIN.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "vm"))
import vmlib  # noqa: E402  (the base image and the umm install are shared with the VM suite)

REPO = vmlib.REPO
WORK = Path(os.environ.get("UMM_FLEET_WORK") or (REPO / "tests" / "fleet" / ".cache"))
BOOT_TIMEOUT = 120 * vmlib.SCALE
REBOOT_EXIT = 133  # systemd-nspawn's exit status when the container rebooted

CONSUL_UNIT = """[Unit]
Description=Consul agent (umm fleet test)
Wants=network-online.target
After=network-online.target

[Service]
Type=notify
ExecStart=/usr/bin/consul agent -config-dir=/etc/consul.d
ExecReload=/bin/kill -HUP $MAINPID
KillSignal=SIGTERM
Restart=on-failure

[Install]
WantedBy=multi-user.target
"""


def _log(msg: str) -> None:
    print(f"[fleet {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def consul_bin() -> Path:
    b = os.environ.get("CONSUL_BIN")
    if b:
        return Path(b)
    out = subprocess.run([str(REPO / "scripts" / "install-consul.sh")], check=True,
                         stdout=subprocess.PIPE, text=True).stdout.strip().splitlines()
    return Path(out[-1])


def need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise AssertionError(f"fleet tests need {', '.join(missing)}: scripts/test-deps.sh installs them")


def build_lower(base: Path, fleet: str, layered: bool = False, layers: tuple[Path, ...] = ()) -> Path:
    """The read-only tree every node of the fleet named `fleet` boots: base +
    umm + consul (per fleet and process: one process runs the cluster and the
    Pacemaker fleet at the same time, and each removes its own tree at close).
    `layered`: instead of a copy of the base rootfs, an overlayfs over it (the
    same tree; saves copying ~600 MB); its upper dir is `<tree>.upper`.
    `layers`: cached overlay upper dirs stacked on the base (e.g. the Pacemaker
    packages, tests/fleet/build-pacemaker-tree.sh); implies `layered`."""
    layered = layered or bool(layers)
    need("systemd-nspawn", "ip")
    tree = WORK / f"lower-{fleet}-{os.getpid()}"
    if tree.exists():
        subprocess.run(["rm", "-rf", "--one-file-system", str(tree)], check=True)
    WORK.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    if layered:
        for d in (tree, Path(f"{tree}.upper"), Path(f"{tree}.work")):
            subprocess.run(["rm", "-rf", "--one-file-system", str(d)], check=True)
            d.mkdir()
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        f"lowerdir={':'.join(str(p) for p in (*layers, base / 'rootfs'))},upperdir={tree}.upper,workdir={tree}.work", str(tree)], check=True)
    else:
        subprocess.run(["cp", "-a", "--reflink=auto", str(base / "rootfs"), str(tree)], check=True)
    vmlib.install_umm(tree)
    shutil.copy2(consul_bin(), tree / "usr/bin/consul")
    (tree / "etc/consul.d").mkdir(parents=True, exist_ok=True)
    (tree / "etc/systemd/system/consul.service").write_text(CONSUL_UNIT)
    subprocess.run(["systemctl", f"--root={tree}", "enable", "consul.service"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Every node runs a service whose check rebootmgr counts (tag rebootmgr):
    # it passes while /etc/fleet-test/healthy exists, so a test can make a
    # node unhealthy from inside it.
    (tree / "etc/fleet-test").mkdir(exist_ok=True)
    (tree / "etc/fleet-test/healthy").write_text("")
    (tree / "etc/consul.d/app.json").write_text(json.dumps({"service": {
        "name": "app", "tags": ["rebootmgr"],
        "check": {"id": "app", "name": "app healthy", "args": ["/usr/bin/test", "-e", "/etc/fleet-test/healthy"],
                  "interval": "2s", "timeout": "5s"}}}))
    # No DHCP client on host0: the address is static (written per node).
    _log(f"fleet lower tree {tree} in {time.monotonic() - t0:.1f} s")
    return tree


class Network:
    """A bridge with 10.213.<n>.1/24 on the host side; nodes get .11, .12, …"""

    in_use: set[int] = set()  # bridges of this process's fleets (the cluster and the Pacemaker fleet live together)

    def __init__(self, n: int | None = None) -> None:
        if n is None:
            # Not one of this process's, nor one that exists on the host (another
            # test process's: the scenarios run beside the cluster tests).
            n = os.getpid() % 200 + 20
            for _ in range(200):
                if n not in Network.in_use and not Path(f"/sys/class/net/ummf{n}").exists():
                    break
                n = (n - 20 + 1) % 200 + 20
            else:
                raise AssertionError("no free fleet bridge ummf20..ummf219: remove stale ones (ip link del ummfN)")
        Network.in_use.add(n)
        self.n = n
        self.bridge = f"ummf{n}"
        self.prefix = f"10.213.{n}"
        subprocess.run(["ip", "link", "del", self.bridge], stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "link", "add", self.bridge, "type", "bridge"], check=True)
        subprocess.run(["ip", "addr", "add", f"{self.prefix}.1/24", "dev", self.bridge], check=True)
        subprocess.run(["ip", "link", "set", self.bridge, "up"], check=True)

    def addr(self, i: int) -> str:
        return f"{self.prefix}.{10 + i}"

    def close(self) -> None:
        subprocess.run(["ip", "link", "del", self.bridge], stderr=subprocess.DEVNULL)
        Network.in_use.discard(self.n)


class Node:
    """One container, booted as often as it reboots."""

    def __init__(self, fleet: "Fleet", name: str, index: int, consul_hcl: str):
        self.fleet = fleet
        self.name = name
        self.addr = fleet.net.addr(index)
        self.dir = fleet.work / name
        self.upper, self.workdir, self.root = self.dir / "upper", self.dir / "work", self.dir / "root"
        for d in (self.upper, self.workdir, self.root):
            d.mkdir(parents=True, exist_ok=True)
        self.logs = self.dir / "logs"
        self.logs.mkdir(exist_ok=True)
        self.boots = 0
        self.boot_args: list[str] = []
        self.proc: subprocess.Popen | None = None
        self.exits: list[int] = []
        self.keep_running = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._mount()
        etc = self.root / "etc"
        (etc / "hostname").write_text(name + "\n")
        (etc / "hosts").write_text(f"127.0.0.1\tlocalhost\n{self.addr}\t{name}\n")
        (etc / "network/interfaces").write_text(
            "auto lo\niface lo inet loopback\n"
            f"auto host0\niface host0 inet static\n    address {self.addr}/24\n"
        )
        (etc / "consul.d/node.hcl").write_text(consul_hcl)
        # A fresh machine id per node, so journald and Consul's node id differ.
        (etc / "machine-id").write_text(os.urandom(16).hex() + "\n")

    def _mount(self) -> None:
        subprocess.run([
            "mount", "-t", "overlay", "overlay", "-o",
            f"lowerdir={self.fleet.lower},upperdir={self.upper},workdir={self.workdir}", str(self.root),
        ], check=True)

    # ---- boots

    def start(self, *args: str) -> None:
        """Boots the node (kernel-style args such as `umm=1` for this boot and
        the reboots that follow) and keeps rebooting it until stop()."""
        with self._lock:  # against the supervisor of a boot power_cut() ended
            self.boot_args = list(args)
            self.keep_running = True
            self._spawn()
        self._thread = threading.Thread(target=self._supervise, daemon=True)
        self._thread.start()

    def _spawn(self) -> None:
        self.boots += 1
        log = open(self.logs / f"console-{self.boots}.log", "wb")
        argv = ["systemd-nspawn", "--register=no", "--keep-unit", "-q", "-D", str(self.root),
                f"--machine={self.name}", f"--network-bridge={self.fleet.net.bridge}",
                "--kill-signal=SIGRTMIN+3", "-b", *self.boot_args]
        # When the test process dies (even by SIGKILL), nspawn gets SIGTERM and
        # powers its container off; with SIGKILL the container's init would
        # outlive it (tests/fleet/test_harness.py).
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     preexec_fn=functools.partial(vmlib._die_with_parent, signal.SIGTERM))
        _log(f"{self.name}: boot {self.boots} {' '.join(self.boot_args)}")

    def _supervise(self) -> None:
        while True:
            proc = self.proc
            if proc is None:
                return
            rc = proc.wait()
            with self._lock:
                if self.proc is not proc:
                    # power_cut() then start(): a newer boot and its own
                    # supervisor own the node now (this one must not touch
                    # keep_running, or the next reboot is not restarted).
                    self.exits.append(rc)
                    return
                self.exits.append(rc)
                if rc == REBOOT_EXIT and self.keep_running:
                    self._spawn()
                    continue
                self.keep_running = False
                return

    def stay_down_after_reboot(self) -> None:
        """The node's next reboot ends its container and it is not booted
        again: a node that went down for its reboot and never came back."""
        with self._lock:
            self.keep_running = False

    def set_boot_args(self, *args: str) -> None:
        """Kernel-style args for the next boots (umm=1, umm=0, or none)."""
        self.boot_args = list(args)

    def power_cut(self) -> None:
        """The node dies at once (no shutdown): SIGKILL to the container's init."""
        with self._lock:
            self.keep_running = False
            if self.proc and self.proc.poll() is None:
                for child in _children(self.proc.pid):
                    os.kill(child, signal.SIGKILL)
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()

    def stop(self) -> None:
        self.power_cut()
        if self._thread:
            self._thread.join(timeout=10)

    def close(self) -> None:
        self.stop()
        subprocess.run(["umount", "-l", str(self.root)], stderr=subprocess.DEVNULL)

    # ---- inside the node

    def _ssh_argv(self, command: str) -> list[str]:
        return ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5", "-i", str(self.fleet.key),
                f"root@{self.addr}", command]

    def ssh(self, command: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        r = subprocess.run(self._ssh_argv(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"{self.name}: `{command}` exited {r.returncode}:\n{r.stdout}{r.stderr}")
        return r

    def out(self, command: str) -> str:
        return self.ssh(command).stdout.strip()

    def wait_ssh(self, timeout: float = BOOT_TIMEOUT) -> float:
        t0 = time.monotonic()
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None and not self.keep_running:
                raise AssertionError(f"{self.name}: container exited ({self.proc.returncode}) before ssh answered;"
                                     f" console: {self.logs}/console-{self.boots}.log")
            try:
                if self.ssh("true", check=False, timeout=10).returncode == 0:
                    return time.monotonic() - t0
            except subprocess.TimeoutExpired:
                pass
            time.sleep(0.5)
        raise AssertionError(f"{self.name}: no ssh after {timeout:.0f} s; console: {self.logs}/console-{self.boots}.log")

    def boot_id(self) -> str:
        return self.out("cat /proc/sys/kernel/random/boot_id")

    def wait_boot(self, old_boot_id: str, timeout: float = BOOT_TIMEOUT) -> str:
        """Waits until the node answers with a boot id other than `old_boot_id`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = None
            try:
                r = self.ssh("cat /proc/sys/kernel/random/boot_id", check=False, timeout=10)
            except subprocess.TimeoutExpired:
                pass
            if r is not None and r.returncode == 0 and r.stdout.strip() and r.stdout.strip() != old_boot_id:
                return r.stdout.strip()
            time.sleep(0.5)
        raise AssertionError(f"{self.name}: no new boot after {timeout:.0f} s (exits {self.exits})")

    def reboot(self, command: str = "systemctl reboot") -> str:
        """Reboots through `command`; returns the new boot id once ssh answers."""
        old = self.boot_id()
        # In the foreground: a command put in the background of an ssh session
        # that then ends is not reliably left running. ssh returns (or loses
        # its connection) once the node goes down.
        self.ssh(command, check=False, timeout=60)
        return self.wait_boot(old)

    def wait_active(self, unit: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ssh(f"systemctl is-active {shlex.quote(unit)}", check=False).stdout.strip() == "active":
                return
            time.sleep(0.5)
        raise AssertionError(f"{self.name}: {unit} not active after {timeout:.0f} s:\n"
                             + self.ssh(f"systemctl status --no-pager {shlex.quote(unit)}", check=False).stdout)

    def is_active(self, unit: str) -> str:
        return self.ssh(f"systemctl is-active {shlex.quote(unit)}", check=False).stdout.strip()

    def umm_status(self) -> dict:
        return json.loads(self.out("umm status --json"))


CRASH_MARK = "umm-test-crash: sysrq reboot now"  # what the base image's crash unit prints


class ScenarioNode(Node):
    """A node for the single-machine umm scenarios (tests/fleet/test_scenarios_nspawn.py),
    driven like a vmlib.VM: a reboot ends the container and the test (reboot_via,
    start) boots it again, kernel-style args for that one boot only; `boots`
    counts boots. No Consul here (its unit is disabled in this node). In a
    container /proc/sysrq-trigger is read-only, so the base image's crash unit gets
    a drop-in that reboots with `systemctl reboot -ff` instead (reboot(2) at once,
    no shutdown: unclean, as sysrq b is) after printing the same mark."""

    iface = "host0"

    def __init__(self, fleet: "Fleet", name: str, index: int):
        super().__init__(fleet, name, index, consul_hcl="")
        etc = self.root / "etc"
        (etc / "systemd/system/multi-user.target.wants/consul.service").unlink(missing_ok=True)
        with open(etc / "network/interfaces", "a") as f:
            f.write(f"    gateway {fleet.net.prefix}.1\n")  # the bridge; nothing is routed beyond it
        dropin = etc / "systemd/system/umm-test-crash.service.d"
        dropin.mkdir(parents=True, exist_ok=True)
        (dropin / "nspawn.conf").write_text(
            "[Service]\nExecStart=\n"
            f"ExecStart=/bin/sh -c 'echo \"{CRASH_MARK} (nspawn: systemctl reboot -ff)\" > /dev/console;"
            " systemctl reboot --force --force; sleep 60'\n")

    def start(self, *args: str) -> None:
        """Boots once; `args` (e.g. umm=1) for this boot only. No supervisor: a
        reboot ends the container and wait_exit()/reboot_via() see it."""
        if self.running():
            raise AssertionError(f"{self.name}: start() while the container runs")
        self.keep_running = False
        self.boot_args = " ".join(args).split()  # start("umm=1 x=y") as vmlib.VM.start takes them
        self.started_at = time.monotonic()
        self._spawn()
        self.boot_args = []

    def boot(self, *args: str) -> float:
        self.start(*args)
        return self.wait_ssh()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def console_text(self) -> str:
        return (self.logs / f"console-{self.boots}.log").read_text(errors="replace")

    def _fail(self, what: str) -> AssertionError:
        return vmlib.VMError(f"{self.name} (boot {self.boots}): {what}; console: {self.logs}/console-{self.boots}.log")

    def wait_exit(self, timeout: float = vmlib.REBOOT_TIMEOUT, what: str = "the node to reboot") -> str:
        """Waits for the container to end: 'reboot' (status 133) or 'poweroff' (0)."""
        assert self.proc is not None
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise self._fail(f"still running after {timeout:.0f} s waiting for {what}") from None
        self.exits.append(rc)
        if rc == REBOOT_EXIT:
            return "reboot"
        if rc == 0:
            return "poweroff"
        raise self._fail(f"systemd-nspawn exited {rc} waiting for {what}")

    def ssh_background(self, command: str) -> subprocess.Popen:
        """Starts `command` (e.g. one that reboots the node) without waiting for it."""
        return subprocess.Popen(self._ssh_argv(command), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    def power_cut_and_boot(self, *args: str) -> None:
        """An unclean end of the boot (SIGKILL to the container's init, no
        shutdown at all), then the next boot."""
        self.power_cut()
        self.start(*args)

    def wait_ssh(self, timeout: float = BOOT_TIMEOUT) -> float:
        try:
            return super().wait_ssh(timeout)
        except AssertionError as e:  # as vmlib.VMError, which wait_ssh_or_exit tells from others
            raise vmlib.VMError(str(e)) from None

    # The VM harness's own logic: reboot_via (run a command, wait for the container
    # to end with the reboot status, boot again with one-boot args, fail early when
    # the command fails), wait_ssh_or_exit, and in-node queries that only use ssh/out.
    reboot_via = vmlib.VM.reboot_via
    wait_ssh_or_exit = vmlib.VM.wait_ssh_or_exit
    wait_boot_settled = vmlib.VM.wait_boot_settled
    active_units = vmlib.VM.active_units
    active_enter_s = vmlib.VM.active_enter_s
    uptime = vmlib.VM.uptime


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


class Fleet:
    """`servers` Consul servers (s1, s2, …) and `clients` clients (c1, …);
    or, with `names`, nodes of those names without Consul (its unit disabled):
    a cluster of another kind (tests/fleet/test_pacemaker.py). nspawn names a
    node's host-side veth `vb-<name>` host-wide, so fleets that may run at the
    same time need names of their own. `layers`: see build_lower."""

    def __init__(self, name: str, servers: int = 3, clients: int = 1, subnet: int | None = None,
                 layered_lower: bool = False, names: list[str] | None = None, layers: tuple[Path, ...] = ()):
        self.base = vmlib.build_base()
        self.key = self.base / "id_ed25519"
        self.work = WORK / name
        if self.work.exists():
            subprocess.run(["umount", "-l", *[str(p) for p in self.work.glob("*/root")]], stderr=subprocess.DEVNULL)
            subprocess.run(["rm", "-rf", "--one-file-system", str(self.work)], check=True)
        self.work.mkdir(parents=True)
        self.lower = build_lower(self.base, name, layered=layered_lower, layers=layers)
        self.net = Network(subnet)
        self.nodes: dict[str, Node] = {}
        if names is not None:
            for i, n in enumerate(names, start=1):
                node = Node(self, n, i, consul_hcl="")
                (node.root / "etc/systemd/system/multi-user.target.wants/consul.service").unlink(missing_ok=True)
                self.nodes[n] = node
            return
        server_addrs = [self.net.addr(i) for i in range(1, servers + 1)]
        names = [f"s{i}" for i in range(1, servers + 1)] + [f"c{i}" for i in range(1, clients + 1)]
        for i, n in enumerate(names, start=1):
            is_server = n.startswith("s")
            hcl = "\n".join([
                f'node_name = "{n}"',
                'datacenter = "fleet"',
                'data_dir = "/var/lib/consul"',
                f'bind_addr = "{self.net.addr(i)}"',
                f'client_addr = "127.0.0.1 {self.net.addr(i)}"',
                f"server = {'true' if is_server else 'false'}",
                *([f"bootstrap_expect = {servers}",
                   'autopilot { server_stabilization_time = "1s" }'] if is_server else []),
                "retry_join = [" + ", ".join(f'"{a}"' for a in server_addrs) + "]",
                'performance { raft_multiplier = 1 }',
                "enable_local_script_checks = true",
                "ports { dns = -1, grpc = -1 }",
                'log_level = "warn"',
                "",
            ])
            self.nodes[n] = Node(self, n, i, hcl)

    def add_scenario_node(self, name: str) -> "ScenarioNode":
        """One more node, without Consul, for a single-machine umm scenario."""
        node = ScenarioNode(self, name, len(self.nodes) + 1)
        self.nodes[name] = node
        return node

    def remove_node(self, name: str) -> None:
        node = self.nodes.pop(name)
        node.close()
        subprocess.run(["rm", "-rf", "--one-file-system", str(node.dir)], stderr=subprocess.DEVNULL)

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    def start_all(self) -> None:
        for n in self.nodes.values():
            n.start()
        for n in self.nodes.values():
            n.wait_ssh()

    def http(self, node: str, method: str, path: str, body: str | None = None) -> object:
        """Consul HTTP API of `node`'s agent, from the host over the test network."""
        import urllib.error
        import urllib.request
        req = urllib.request.Request(f"http://{self.nodes[node].addr}:8500{path}", method=method,
                                     data=body.encode() if body is not None else None)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                text = r.read().decode()
        except urllib.error.HTTPError as e:
            if e.code == 404 and method == "GET":
                return None  # no such key (KV), no such node
            raise
        return json.loads(text) if text.strip() else None

    def members(self, via: str) -> dict[str, int]:
        """Serf status by member name as `via` sees it (1 alive, 3 left, 4 failed)."""
        return {m["Name"]: m["Status"] for m in self.http(via, "GET", "/v1/agent/members")}

    def wait(self, what: str, cond, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                if cond():
                    return
            except Exception as e:  # noqa: BLE001 - a node may be rebooting
                last = e
            time.sleep(0.5)
        raise AssertionError(f"{what}: not after {timeout:.0f} s (last error: {last})")

    def wait_cluster(self) -> None:
        servers = [n for n in self.nodes if n.startswith("s")]
        self.wait("every agent alive and a Raft leader", lambda: (
            all(st == 1 for st in self.members(servers[0]).values())
            and len(self.members(servers[0])) == len(self.nodes)
            and self.http(servers[0], "GET", "/v1/status/leader") not in ("", None)
            # autopilot answers 429 (an exception here) until every server is healthy
            and all(sv["Healthy"] for sv in self.http(servers[0], "GET", "/v1/operator/autopilot/health")["Servers"])
        ), timeout=120)

    def slot_holders(self) -> dict:
        """Holders of the ungrouped reboot slots (`lock/.lock`), as s1 sees them."""
        import base64
        kv = self.http("s1", "GET", "/v1/kv/service/rebootmgr/lock/.lock")
        return json.loads(base64.b64decode(kv[0]["Value"]))["Holders"] if kv else {}

    def app_check_status(self, node: str) -> str | None:
        """The status of `node`'s `app` service check as the servers see it (None: no such check)."""
        for c in self.http("s1", "GET", f"/v1/health/node/{node}"):
            if c.get("ServiceName") == "app":
                return c["Status"]
        return None

    def maintenance_notes(self, node: str) -> str | None:
        """The reason of `node`'s Consul node maintenance; None when not in maintenance."""
        for c in self.http("s1", "GET", f"/v1/health/node/{node}"):
            if c["CheckID"] == "_node_maintenance":
                return c["Notes"]
        return None

    def reset(self) -> None:
        """After a test (pass or fail): every Consul node booted, out of MM,
        healthy, with no trigger, no coordination drop-in and no slot or
        node maintenance left, so one test's failure does not fail the next."""
        for n in self.nodes.values():
            if isinstance(n, ScenarioNode):
                continue
            n.set_boot_args()
            with n._lock:
                alive = n.proc is not None and n.proc.poll() is None
                n.keep_running = n.keep_running or alive  # undo stay_down_after_reboot()
            if not alive:
                n.start()
            n.wait_ssh()
            n.ssh("rm -f /etc/umm/umm.toml.d/50-coordination.toml /var/run/reboot-required /run/reboot-needed"
                  " /var/lib/umm/coordination-leave; mkdir -p /etc/fleet-test; touch /etc/fleet-test/healthy",
                  check=False)
            if n.umm_status().get("mode") == "maintenance":
                n.ssh("umm off", check=False)
            n.ssh("systemctl reset-failed umm-coordination.service", check=False)
        for n in self.nodes.values():
            if not isinstance(n, ScenarioNode):
                self.wait(f"{n.name}: agent up", lambda n=n: self.http(n.name, "GET", "/v1/agent/self"), timeout=60)
                self.http(n.name, "PUT", "/v1/agent/maintenance?enable=false")
        kv = self.http("s1", "GET", "/v1/kv/service/rebootmgr/?recurse=true") or []
        for e in kv:
            if e["Key"].startswith("service/rebootmgr/lock/") or e["Key"].endswith("/reboot_in_progress"):
                self.http("s1", "DELETE", f"/v1/kv/{e['Key']}")
        self.wait("the slot free", lambda: not self.slot_holders(), timeout=30)

    def close(self) -> None:
        for n in self.nodes.values():
            n.close()
        self.net.close()
        subprocess.run(["umount", str(self.lower)], stderr=subprocess.DEVNULL)  # when layered
        for d in (self.lower, f"{self.lower}.upper", f"{self.lower}.work"):
            subprocess.run(["rm", "-rf", "--one-file-system", str(d)], stderr=subprocess.DEVNULL)
