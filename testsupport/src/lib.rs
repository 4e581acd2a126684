//! Test support shared by every package's tests: fake roots ([`FakeRoot`]),
//! real Consul agents on loopback for the rebootmgr tests, and a harness that
//! runs the rebootmgr binary as a node (its own fake root, boot id and reboot
//! recorder). Consul must be available: these tests fail, never skip.
#![allow(dead_code)]

pub mod fakeroot;
pub mod prom;
pub use fakeroot::{require_root, FakeRoot};

use serde_json::{json, Value};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use umm_coord::consul::Consul;

/// The repository (the workspace root).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testsupport sits in the workspace root")
        .to_path_buf()
}

/// The `rebootmgr` binary cargo built for the running integration test
/// (`target/<profile>/rebootmgr`, beside the test's `deps/` directory).
pub fn rebootmgr_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("rebootmgr"))
        .expect("test executable in target/<profile>/deps");
    assert!(
        bin.exists(),
        "{} missing: run these tests through `cargo test -p rebootmgr`",
        bin.display()
    );
    bin
}

/// The names listed under "Commands:" in a clap `--help` text (without `help`).
pub fn help_subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // Wrapped descriptions continue on deeper-indented lines.
        .filter(|l| !l[2..].starts_with(' '))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect()
}

/// Every `--long-option` named in a text (a `--help` output, a man page).
pub fn long_options(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']' || c == '|')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| {
            w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                .to_string()
        })
        .filter(|w| w.len() > 2)
        .collect()
}

/// `CONSUL_BIN`, else whatever `scripts/install-consul.sh` installs/finds.
pub fn consul_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(b) = std::env::var_os("CONSUL_BIN").filter(|b| !b.is_empty()) {
            return PathBuf::from(b);
        }
        let script = repo().join("scripts/install-consul.sh");
        let out = Command::new(&script)
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("Consul is required: running {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "Consul is required for these tests: {} failed ({}); set CONSUL_BIN to a consul 1.8 binary",
            script.display(),
            out.status
        );
        let path = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or("").trim().to_string();
        assert!(!path.is_empty() && Path::new(&path).exists(), "install-consul.sh printed no usable path");
        PathBuf::from(path)
    })
    .clone()
}

fn free_port() -> u16 {
    loop {
        let t = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = t.local_addr().expect("local addr").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub struct Agent {
    pub name: String,
    pub http: u16,
    pub serf_lan: u16,
    /// ACL master token when started with ACLs on.
    pub token: Option<String>,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Agent {
    pub fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }
    pub fn client(&self) -> Consul {
        Consul::new(&self.addr(), self.token.clone())
    }
    /// SIGKILL: the agent dies without leaving (a dead member).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A dev agent (single-node server) or, with `join`, a client joining the
    /// agent listening on that serf port.
    pub fn start(name: &str, join: Option<u16>) -> Agent {
        Agent::start_with(name, join, None)
    }

    /// With `acl_master`: ACLs on, default deny, that master token.
    pub fn start_with(name: &str, join: Option<u16>, acl_master: Option<&str>) -> Agent {
        let mode = match join {
            None => Mode::Dev,
            Some(p) => Mode::Client { join: p },
        };
        Agent::spawn(name, mode, acl_master)
    }

    /// One of `expect` servers that form a real Raft cluster (no dev mode):
    /// the first is started with `join: None`, the others join its serf port.
    /// Autopilot's stabilisation time is cut to 1 s so the test does not wait
    /// 10 s per server; every other Raft and autopilot setting is Consul's.
    /// Does not wait for a leader: call [`wait_raft`] once all are started.
    pub fn start_server(name: &str, expect: usize, join: Option<u16>) -> Agent {
        Agent::spawn(name, Mode::Server { expect, join }, None)
    }

    /// Starts the agent; when it dies at once (a port that `free_port` found
    /// free was taken by a parallel test in between) it is started again on
    /// other ports, up to 3 times, and the agent's own log is shown at the end.
    fn spawn(name: &str, mode: Mode, acl_master: Option<&str>) -> Agent {
        let mut last = String::new();
        for _ in 0..3 {
            match Agent::try_spawn(name, &mode, acl_master) {
                Ok(a) => return a,
                Err(e) => last = e,
            }
        }
        panic!("consul agent {name} did not start: {last}");
    }

    fn try_spawn(name: &str, mode: &Mode, acl_master: Option<&str>) -> Result<Agent, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (http, serf_lan, serf_wan, server) =
            (free_port(), free_port(), free_port(), free_port());
        let mut cmd = Command::new(consul_bin());
        cmd.arg("agent");
        match *mode {
            Mode::Dev => {
                cmd.arg("-dev");
            }
            Mode::Client { join } => {
                cmd.arg("-data-dir")
                    .arg(dir.path())
                    .arg(format!("-retry-join=127.0.0.1:{join}"));
            }
            Mode::Server { expect, join } => {
                cmd.arg("-server")
                    .arg(format!("-bootstrap-expect={expect}"))
                    .arg("-data-dir")
                    .arg(dir.path())
                    .arg("-hcl")
                    .arg("autopilot { server_stabilization_time = \"1s\" }")
                    .arg("-hcl")
                    .arg("performance { raft_multiplier = 1 }");
                if let Some(p) = join {
                    cmd.arg(format!("-retry-join=127.0.0.1:{p}"));
                }
            }
        }
        let is_server_without_leader = matches!(mode, Mode::Server { .. });
        cmd.args(["-node", name, "-bind", "127.0.0.1", "-client", "127.0.0.1"])
            .arg(format!("-http-port={http}"))
            .arg(format!("-serf-lan-port={serf_lan}"))
            .arg(format!("-serf-wan-port={serf_wan}"))
            .arg(format!("-server-port={server}"))
            .arg("-dns-port=-1")
            .arg("-grpc-port=-1")
            .arg("-log-level=warn");
        if let Some(t) = acl_master {
            cmd.arg("-hcl").arg(format!(
                "acl {{ enabled = true\n default_policy = \"deny\"\n tokens {{ master = \"{t}\"\n agent = \"{t}\" }} }}"
            ));
        }
        let log_path = dir.path().join("agent.log");
        let log = std::fs::File::create(&log_path).expect("agent log");
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("agent log"))
            .stderr(log);
        let child = cmd.spawn().expect("start consul");
        let mut agent = Agent {
            name: name.to_string(),
            http,
            serf_lan,
            token: acl_master.map(str::to_string),
            child: Some(child),
            _dir: dir,
        };
        let died = |agent: &mut Agent| -> Option<String> {
            let exited = agent
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())?;
            Some(format!(
                "exited ({exited}): {}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            ))
        };
        if is_server_without_leader {
            std::thread::sleep(Duration::from_millis(500));
        } else {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !agent.ready() {
                if let Some(e) = died(&mut agent) {
                    return Err(e);
                }
                assert!(
                    Instant::now() < deadline,
                    "consul agent {name} not ready after 60 s: {}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        match died(&mut agent) {
            Some(e) => Err(e),
            None => Ok(agent),
        }
    }

    fn ready(&self) -> bool {
        let c = self.client();
        c.agent_node_name().is_ok()
            && c.kv_put("test/ready", "1").is_ok()
            && c.node_checks(&self.name)
                .map(|cs| !cs.is_empty())
                .unwrap_or(false)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.ready() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "consul agent {} not ready after 60 s",
                self.name
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

enum Mode {
    Dev,
    Client { join: u16 },
    Server { expect: usize, join: Option<u16> },
}

/// Waits until every server is a healthy Raft voter in autopilot's view.
pub fn wait_raft(servers: &[&Agent]) {
    for s in servers {
        s.wait_ready();
    }
    let c = servers[0].client();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let ok = c
            .raft_servers()
            .map(|v| v.len() == servers.len() && v.iter().all(|s| s.voter && s.healthy))
            .unwrap_or(false);
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Raft cluster not healthy after 90 s: {:?}",
            c.raft_servers()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A dev server plus `clients` client agents named c1, c2, …
pub fn cluster(prefix: &str, clients: usize) -> Vec<Agent> {
    let server = Agent::start(&format!("{prefix}-server"), None);
    let mut v = vec![];
    let join = server.serf_lan;
    v.push(server);
    for i in 1..=clients {
        v.push(Agent::start(&format!("{prefix}-c{i}"), Some(join)));
    }
    v
}

pub fn http(method: &str, url: &str, body: Option<Value>) -> Value {
    let req = ureq::request(method, url);
    let res = match body {
        Some(b) => req.send_string(&b.to_string()),
        None => req.call(),
    };
    match res {
        Ok(r) => {
            let t = r.into_string().unwrap_or_default();
            serde_json::from_str(&t).unwrap_or(Value::Null)
        }
        Err(e) => panic!("{method} {url}: {e}"),
    }
}

/// Registers a service with a TTL check on an agent's own node.
pub fn agent_service(agent: &Agent, id: &str, tags: &[&str], passing: bool) {
    http(
        "PUT",
        &format!("{}/v1/agent/service/register", agent.addr()),
        Some(json!({
            "ID": id, "Name": id, "Tags": tags,
            "Check": {"CheckID": format!("{id}-ttl"), "TTL": "10m",
                      "Status": if passing { "passing" } else { "critical" }}
        })),
    );
}

/// Flips an agent TTL check.
pub fn ttl(agent: &Agent, service_id: &str, pass: bool) {
    let what = if pass { "pass" } else { "fail" };
    http(
        "PUT",
        &format!("{}/v1/agent/check/{what}/{service_id}-ttl", agent.addr()),
        None,
    );
}

/// Registers (or re-registers) a catalog-only node with one service and its
/// check in the given state: a simulated node with no agent of its own.
pub fn catalog_service(c: &Consul, node: &str, service: &str, tags: &[&str], status: &str) {
    c.catalog_register(&json!({
        "Node": node, "Address": "127.0.0.2", "SkipNodeUpdate": false,
        "Service": {"ID": service, "Service": service, "Tags": tags},
        "Checks": [{"Node": node, "CheckID": format!("{service}-check"), "Name": format!("{service} check"),
                    "Status": status, "ServiceID": service}],
    }))
    .expect("catalog register");
}

/// A simulated node: a fake root (trigger files, tasks, boot id, /run) and
/// the reboot recorder.
pub struct Node {
    pub name: String,
    pub consul: String,
    pub root: FakeRoot,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {} after {:?}\nstdout: {}\nstderr: {}",
            self.code, self.took, self.stdout, self.stderr
        )
    }
}

impl Node {
    pub fn new(name: &str, consul: &str) -> Node {
        let root = FakeRoot::booted("boot-1", None);
        for d in [
            "etc/rebootmgr/pre_boot_tasks",
            "etc/rebootmgr/post_boot_tasks",
            "var/run",
            "run",
        ] {
            root.mkdir(d);
        }
        Node {
            name: name.to_string(),
            consul: consul.to_string(),
            root,
        }
    }
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.p(rel)
    }
    pub fn record(&self) -> PathBuf {
        self.path("reboots")
    }
    pub fn reboots(&self) -> usize {
        std::fs::read_to_string(self.record())
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }
    /// What a real reboot does to the node's local state.
    pub fn simulate_reboot(&self, boot: &str) {
        self.root.set_boot_id(boot);
        let _ = std::fs::remove_file(self.path("var/run/reboot-required"));
        let _ = std::fs::remove_file(self.path("var/run/reboot_required"));
    }
    pub fn touch_trigger(&self) {
        std::fs::write(self.path("var/run/reboot-required"), "").expect("trigger");
    }
    pub fn task(&self, phase: &str, name: &str, body: &str) -> PathBuf {
        self.root
            .script(&format!("etc/rebootmgr/{phase}_boot_tasks/{name}"), body)
    }
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(rebootmgr_bin());
        cmd.arg("--consul")
            .arg(&self.consul)
            .arg("--node")
            .arg(&self.name)
            .args(args);
        cmd.env("UMM_ROOT", self.root.path())
            .env("REBOOTMGR_REBOOT_RECORD", self.record())
            .env("REBOOTMGR_LOG_INFO", "1")
            .env_remove("CONSUL_HTTP_ADDR")
            .env_remove("CONSUL_HTTP_TOKEN")
            .stdin(Stdio::null());
        cmd
    }
    pub fn run(&self, args: &[&str]) -> Run {
        let start = Instant::now();
        let out: Output = self.command(args).output().expect("run rebootmgr");
        if start.elapsed() > Duration::from_secs(5) {
            eprintln!("slow run ({:?}): {} {:?}", start.elapsed(), self.name, args);
        }
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            took: start.elapsed(),
        }
    }
    /// `rebootmgr run --settle 0` plus extra args.
    pub fn reboot(&self, extra: &[&str]) -> Run {
        let mut a = vec!["run", "--settle", "0"];
        a.extend_from_slice(extra);
        self.run(&a)
    }
    /// Enables the node in Consul (config key), optionally in a group, and
    /// registers it in the catalog when it has no agent of its own.
    pub fn enable(&self, group: Option<&str>) {
        let c = Consul::new(&self.consul, None);
        if c.node_address(&self.name).expect("catalog").is_none() {
            c.catalog_register(&json!({"Node": self.name, "Address": "127.0.0.2"}))
                .expect("register node");
        }
        let mut cfg = json!({"enabled": true, "message": ""});
        if let Some(g) = group {
            cfg["group"] = json!(g);
        }
        c.kv_put(
            &format!("service/rebootmgr/nodes/{}/config", self.name),
            &cfg.to_string(),
        )
        .expect("put config");
    }
}

/// Whether `node` currently has a `_node_maintenance` check.
pub fn in_maintenance(c: &Consul, node: &str) -> bool {
    c.node_checks(node)
        .expect("node checks")
        .iter()
        .any(|ch| ch.check_id == "_node_maintenance")
}

/// Holders of a lock prefix's semaphore.
pub fn holders(c: &Consul, prefix: &str) -> Vec<String> {
    match c.kv_get(&format!("{prefix}/.lock")).expect("kv get") {
        Some(e) => {
            let v: Value = serde_json::from_str(&e.value_str()).unwrap_or(Value::Null);
            v.get("Holders")
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default()
        }
        None => vec![],
    }
}

pub fn markers(c: &Consul) -> Vec<String> {
    c.kv_list("service/rebootmgr/nodes/")
        .expect("kv list")
        .into_iter()
        .filter(|e| e.key.ends_with("/reboot_in_progress"))
        .map(|e| e.key)
        .collect()
}

/// Payloads of the `chat_escalation` events the agent has seen.
pub fn chat_events(a: &Agent) -> Vec<String> {
    let v = http(
        "GET",
        &format!("{}/v1/event/list?name=chat_escalation", a.addr()),
        None,
    );
    v.as_array()
        .map(|evs| {
            evs.iter()
                .map(|e| b64(e["Payload"].as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default()
}

/// Decodes base64 (Consul's event payloads) as UTF-8 text.
pub fn b64(s: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for ch in s.bytes().filter(|&b| b != b'=') {
        let v = A.iter().position(|&x| x == ch).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    String::from_utf8(out).unwrap()
}
