//! rebootmgr against a real Consul agent that speaks HTTPS only, with
//! `verify_incoming` (client certificates required) and ACLs on (default
//! deny), its certificates made by `consul tls ca create` / `consul tls cert
//! create`. The token used is one with exactly the minimal policy that
//! docs/rebootmgr.md documents, read from the doc itself.

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use umm_coord::consul::Consul;
use umm_coord::tls::{ConsulSettings, TlsSettings};
use umm_testsupport::{consul_bin, holders, in_maintenance, markers, Node, Run};

const MASTER: &str = "tls-master-secret";

fn free_port() -> u16 {
    loop {
        let t = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = t.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn consul_tls(dir: &Path, args: &[&str]) {
    let out = Command::new(consul_bin())
        .arg("tls")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run consul tls");
    assert!(
        out.status.success(),
        "consul tls {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct TlsAgent {
    child: Child,
    https: u16,
    pki: tempfile::TempDir,
    wrong_ca: tempfile::TempDir,
    _data: tempfile::TempDir,
}

impl Drop for TlsAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TlsAgent {
    fn p(&self, f: &str) -> PathBuf {
        self.pki.path().join(f)
    }
    fn addr(&self) -> String {
        format!("https://127.0.0.1:{}", self.https)
    }
    /// The right CA and client certificate, and `token`.
    fn settings(&self, token: Option<&str>) -> ConsulSettings {
        ConsulSettings {
            addr: Some(self.addr()),
            token: token.map(str::to_string),
            token_file: None,
            tls: TlsSettings {
                ca_file: Some(self.p("consul-agent-ca.pem")),
                client_cert: Some(self.p("dc1-client-consul-0.pem")),
                client_key: Some(self.p("dc1-client-consul-0-key.pem")),
                ..Default::default()
            },
        }
    }
    fn master(&self) -> Consul {
        Consul::with_settings(&self.settings(Some(MASTER))).expect("TLS client")
    }

    fn start(name: &str) -> TlsAgent {
        // The test's own client reads these through the safe helper too,
        // so they must not sit below a world-writable /tmp.
        let pki = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        consul_tls(pki.path(), &["ca", "create"]);
        consul_tls(pki.path(), &["cert", "create", "-server", "-dc", "dc1"]);
        consul_tls(pki.path(), &["cert", "create", "-client", "-dc", "dc1"]);
        let wrong_ca = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        consul_tls(wrong_ca.path(), &["ca", "create"]);
        let data = tempfile::tempdir().unwrap();
        let https = free_port();
        let hcl = format!(
            r#"ports {{ http = -1, https = {https}, dns = -1, grpc = -1, serf_lan = {}, serf_wan = {}, server = {} }}
verify_incoming = true
verify_outgoing = true
ca_file = "{p}/consul-agent-ca.pem"
cert_file = "{p}/dc1-server-consul-0.pem"
key_file = "{p}/dc1-server-consul-0-key.pem"
acl {{ enabled = true
  default_policy = "deny"
  tokens {{ master = "{MASTER}"
    agent = "{MASTER}" }} }}"#,
            free_port(),
            free_port(),
            free_port(),
            p = pki.path().display()
        );
        let log = std::fs::File::create(data.path().join("agent.log")).unwrap();
        let child = Command::new(consul_bin())
            .args(["agent", "-dev", "-node", name])
            .args(["-bind", "127.0.0.1", "-client", "127.0.0.1"])
            .arg("-hcl")
            .arg(&hcl)
            .arg("-log-level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start consul");
        let mut a = TlsAgent {
            child,
            https,
            pki,
            wrong_ca,
            _data: data,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let c = a.master();
        loop {
            let ready = c.agent_node_name().is_ok()
                && c.kv_put("test/ready", "1").is_ok()
                && c.node_checks(name).map(|v| !v.is_empty()).unwrap_or(false);
            if ready {
                break;
            }
            if let Ok(Some(st)) = a.child.try_wait() {
                panic!(
                    "TLS consul agent exited ({st}): {}",
                    std::fs::read_to_string(a._data.path().join("agent.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "TLS consul agent not ready after 60 s: {}",
                std::fs::read_to_string(a._data.path().join("agent.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        a
    }
}

/// The policy in docs/rebootmgr.md, between its markers, for `node`.
fn documented_policy(node: &str) -> String {
    let doc = std::fs::read_to_string(umm_testsupport::repo().join("docs/rebootmgr.md")).unwrap();
    let start = doc
        .find("<!-- acl-policy -->")
        .expect("docs/rebootmgr.md has the ACL policy");
    let rest = &doc[start..];
    let body = rest
        .split_once("```hcl\n")
        .and_then(|(_, b)| b.split_once("```"))
        .expect("an hcl block after the marker")
        .0;
    body.replace("<node>", node)
}

fn json_req(
    c: &Consul,
    agent: &TlsAgent,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    // The library client has no ACL API; curl through the same certificates.
    let _ = c;
    let out = Command::new("curl")
        .args(["-sS", "--fail-with-body", "-X", "PUT"])
        .arg("--cacert")
        .arg(agent.p("consul-agent-ca.pem"))
        .arg("--cert")
        .arg(agent.p("dc1-client-consul-0.pem"))
        .arg("--key")
        .arg(agent.p("dc1-client-consul-0-key.pem"))
        .args(["-H", &format!("X-Consul-Token: {MASTER}")])
        .args(["--data", &body.to_string()])
        .arg(format!("{}{path}", agent.addr()))
        .output()
        .expect("curl is needed (scripts/test-deps.sh)");
    assert!(
        out.status.success(),
        "PUT {path}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn run_with(n: &Node, env: &[(&str, &Path)], extra_env: &[(&str, &str)]) -> Run {
    let start = Instant::now();
    let mut cmd = n.command(&["run", "--settle", "0"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run rebootmgr");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: start.elapsed(),
    }
}

#[test]
fn https_with_client_certificate_and_minimal_acl_token() {
    let a = TlsAgent::start("tls");
    let c = a.master();
    c.kv_put("service/rebootmgr/nodes/tls/config", r#"{"enabled":true}"#)
        .unwrap();

    // A token with only the documented policy, given through a token file.
    let pol = json_req(
        &c,
        &a,
        "/v1/acl/policy",
        serde_json::json!({"Name": "rebootmgr-tls", "Rules": documented_policy("tls")}),
    );
    let tok = json_req(
        &c,
        &a,
        "/v1/acl/token",
        serde_json::json!({"Policies": [{"ID": pol["ID"]}]}),
    );
    let secret = tok["SecretID"].as_str().unwrap().to_string();
    let n = Node::new("tls", &a.addr());
    n.touch_trigger();
    // The files live in the node's root (UMM_ROOT), where rebootmgr reads
    // them through the safe helper; rebootmgr is given their paths there.
    let put = |name: &str, from: &Path, mode: u32| -> PathBuf {
        let text = std::fs::read_to_string(from).unwrap();
        n.root
            .write_mode(&format!("etc/rebootmgr/tls/{name}"), &text, mode);
        PathBuf::from(format!("/etc/rebootmgr/tls/{name}"))
    };
    let ca = put("ca.pem", &a.p("consul-agent-ca.pem"), 0o644);
    let wrong = put(
        "wrong-ca.pem",
        &a.wrong_ca.path().join("consul-agent-ca.pem"),
        0o644,
    );
    let cert = put("client.pem", &a.p("dc1-client-consul-0.pem"), 0o644);
    let key = put("client-key.pem", &a.p("dc1-client-consul-0-key.pem"), 0o600);
    std::fs::write(a.pki.path().join("token"), format!("{secret}\n")).unwrap();
    let token_file = put("token", &a.pki.path().join("token"), 0o600);

    // 1. A wrong CA: refused with a clear error, "try later", nothing taken.
    let r = run_with(
        &n,
        &[
            ("CONSUL_CACERT", &wrong),
            ("CONSUL_CLIENT_CERT", &cert),
            ("CONSUL_CLIENT_KEY", &key),
            ("CONSUL_HTTP_TOKEN_FILE", &token_file),
        ],
        &[],
    );
    assert_eq!(
        r.code, 6,
        "wrong CA is 'Consul unreachable, try later': {r:?}"
    );
    assert!(
        r.stderr.contains("not trusted")
            && r.stderr.contains("CONSUL_CACERT")
            && r.stderr.contains("UnknownIssuer"),
        "the error says what to check: {r:?}"
    );
    assert_eq!(n.reboots(), 0);

    // 2. The right CA but no client certificate: verify_incoming refuses.
    let r = run_with(
        &n,
        &[
            ("CONSUL_CACERT", &ca),
            ("CONSUL_HTTP_TOKEN_FILE", &token_file),
        ],
        &[],
    );
    assert_eq!(r.code, 6, "no client certificate: {r:?}");
    assert!(r.stderr.contains("CONSUL_CLIENT_CERT"), "{r:?}");
    assert_eq!(n.reboots(), 0);

    // 3. A CA file that does not exist: an operator must look (104), no reboot.
    let missing = PathBuf::from("/etc/rebootmgr/tls/nope.pem");
    let r = run_with(&n, &[("CONSUL_CACERT", &missing)], &[]);
    assert_eq!(r.code, 104, "{r:?}");
    assert!(
        r.stderr.contains("nope.pem") && r.stderr.contains("does not exist"),
        "{r:?}"
    );
    assert_eq!(n.reboots(), 0);
    assert!(markers(&c).is_empty() && holders(&c, "service/rebootmgr").is_empty());
    assert!(!in_maintenance(&c, "tls"));

    // 4. Everything right, the CA given as a directory (CONSUL_CAPATH) and
    //    the name checked being the server's (CONSUL_TLS_SERVER_NAME): the
    //    node reboots.
    let ca_text = std::fs::read_to_string(a.p("consul-agent-ca.pem")).unwrap();
    n.root
        .write_mode("etc/rebootmgr/ca.d/ca.pem", &ca_text, 0o644);
    let ca_dir = PathBuf::from("/etc/rebootmgr/ca.d");
    let r = run_with(
        &n,
        &[
            ("CONSUL_CAPATH", &ca_dir),
            ("CONSUL_CLIENT_CERT", &cert),
            ("CONSUL_CLIENT_KEY", &key),
            ("CONSUL_HTTP_TOKEN_FILE", &token_file),
        ],
        &[("CONSUL_TLS_SERVER_NAME", "server.dc1.consul")],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(n.reboots(), 1, "{r:?}");
    assert!(in_maintenance(&c, "tls"));

    // A server name the certificate does not carry is refused.
    let good: [(&str, &Path); 4] = [
        ("CONSUL_CACERT", &ca),
        ("CONSUL_CLIENT_CERT", &cert),
        ("CONSUL_CLIENT_KEY", &key),
        ("CONSUL_HTTP_TOKEN_FILE", &token_file),
    ];
    let r = run_with(
        &n,
        &good,
        &[("CONSUL_TLS_SERVER_NAME", "server.dc2.consul")],
    );
    assert_eq!(r.code, 6, "{r:?}");
    assert!(r.stderr.contains("not trusted"), "{r:?}");

    // After the reboot, the post-boot run gives everything back with the
    // same minimal token (session, KV, node maintenance off).
    n.simulate_reboot("boot-2");
    let r = run_with(&n, &good, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!in_maintenance(&c, "tls"), "{r:?}");
    assert!(markers(&c).is_empty(), "{r:?}");

    // The same settings from rebootmgr.toml's [consul] table, no CONSUL_*
    // variable at all: the node reboots.
    let table = |ca_file: &Path| {
        format!(
            "[consul]\nca_file = {:?}\nclient_cert = {:?}\nclient_key = {:?}\ntoken_file = {:?}\n",
            ca_file, cert, key, token_file
        )
    };
    n.root.write("etc/rebootmgr/rebootmgr.toml", &table(&ca));
    let r = run_with(&n, &[], &[]);
    assert_eq!(r.code, 0, "[consul] from the file: {r:?}");
    assert_eq!(n.reboots(), 2, "{r:?}");
    n.simulate_reboot("boot-3");
    // The file wins over the environment: a wrong CA in the file is refused
    // although CONSUL_CACERT names the right one.
    n.root.write("etc/rebootmgr/rebootmgr.toml", &table(&wrong));
    let r = run_with(&n, &[("CONSUL_CACERT", &ca)], &[]);
    assert_eq!(r.code, 6, "the file's ca_file wins: {r:?}");
    assert!(r.stderr.contains("not trusted"), "{r:?}");
    n.root.write("etc/rebootmgr/rebootmgr.toml", &table(&ca));
    let r = run_with(&n, &[], &[]);
    assert_eq!(r.code, 0, "post-boot with the file's settings: {r:?}");
    assert!(!in_maintenance(&c, "tls"), "{r:?}");
}
