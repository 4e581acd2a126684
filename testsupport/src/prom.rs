//! The monitoring side of the tests, real and on loopback: Debian's
//! `prometheus-node-exporter` reading a textfile directory, Debian's
//! `prometheus-alertmanager` with its own temp storage, and a webhook
//! receiver (a small HTTP server collecting the JSON bodies POSTed to it).
//! The binaries come from scripts/test-deps.sh: missing, the tests fail.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn bin(name: &str) -> PathBuf {
    let p = Path::new("/usr/bin").join(name);
    assert!(
        p.exists(),
        "{} is required for these tests: run scripts/test-deps.sh (it installs Debian's {name})",
        p.display()
    );
    p
}

fn wait_ready(child: &mut Child, url: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if ureq::get(url).call().is_ok() {
            return;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("{what} exited before it answered {url}: {st}");
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {url} not ready after 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts `/usr/bin/<name> ARGS…` (output discarded) and waits until `ready` answers.
fn spawn(name: &str, args: &[String], ready: &str) -> Child {
    let mut child = Command::new(bin(name))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    wait_ready(&mut child, ready, name);
    child
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// `prometheus-node-exporter` with only the textfile collector, on
/// 127.0.0.1, reading `dir`.
pub struct NodeExporter {
    pub port: u16,
    child: Child,
}

impl NodeExporter {
    pub fn start(dir: &Path) -> NodeExporter {
        let port = super::free_port();
        let child = spawn(
            "prometheus-node-exporter",
            &[
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--collector.disable-defaults".into(),
                "--collector.textfile".into(),
                format!("--collector.textfile.directory={}", dir.display()),
            ],
            &format!("http://127.0.0.1:{port}/metrics"),
        );
        NodeExporter { port, child }
    }

    /// The text of one scrape of `/metrics`.
    pub fn scrape(&self) -> String {
        ureq::get(&format!("http://127.0.0.1:{}/metrics", self.port))
            .call()
            .expect("scrape node_exporter")
            .into_string()
            .expect("metrics text")
    }

    /// The value of the sample `name{labels}` (labels exactly as exposed,
    /// e.g. `reason="lock_busy"`; "" for none) in one scrape.
    pub fn value(&self, name: &str, labels: &str) -> Option<f64> {
        sample(&self.scrape(), name, labels)
    }
}

/// The value of `name{labels}` in exposition text.
pub fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let want = if labels.is_empty() {
        format!("{name} ")
    } else {
        format!("{name}{{{labels}}} ")
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&want))
        .and_then(|v| v.trim().parse().ok())
}

/// Asserts the samples `(name, labels, value)` in exposition text.
pub fn check(text: &str, want: &[(&str, &str, f64)]) {
    for (name, labels, value) in want {
        assert_eq!(
            sample(text, name, labels),
            Some(*value),
            "{name}{{{labels}}} in:\n{text}"
        );
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// `prometheus-alertmanager` on 127.0.0.1 (no cluster), its own storage.
pub struct Alertmanager {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    pub fn start() -> Alertmanager {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("alertmanager.yml");
        std::fs::write(
            &cfg,
            "route:\n  receiver: none\nreceivers:\n  - name: none\n",
        )
        .expect("write alertmanager.yml");
        let port = super::free_port();
        let child = spawn(
            "prometheus-alertmanager",
            &[
                format!("--config.file={}", cfg.display()),
                format!("--storage.path={}", dir.path().join("data").display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--cluster.listen-address=".into(),
            ],
            &format!("http://127.0.0.1:{port}/-/ready"),
        );
        Alertmanager {
            port,
            child,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every silence (`GET /api/v2/silences`).
    pub fn silences(&self) -> Vec<Value> {
        super::http("GET", &format!("{}/api/v2/silences", self.url()), None)
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The silences whose only matcher is `label="value"`.
    pub fn silences_of(&self, label: &str, value: &str) -> Vec<Value> {
        self.silences()
            .into_iter()
            .filter(|s| {
                let m = &s["matchers"];
                m.as_array().is_some_and(|a| a.len() == 1)
                    && m[0]["name"] == label
                    && m[0]["value"] == value
            })
            .collect()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// A webhook receiver on 127.0.0.1: every POST's JSON body is kept; it
/// answers 200 (or, with `hang`, never answers).
pub struct Webhook {
    pub port: u16,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Webhook {
    pub fn start(hang: bool) -> Webhook {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind the webhook receiver");
        let port = l.local_addr().expect("addr").port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let b2 = bodies.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut s) = conn else { continue };
                let b3 = b2.clone();
                std::thread::spawn(move || {
                    let mut r = BufReader::new(s.try_clone().expect("clone"));
                    let mut len = 0usize;
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.trim_end();
                        if l.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = l.split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                len = v.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0u8; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    b3.lock().unwrap().push(
                        serde_json::from_slice(&body).unwrap_or_else(|_| {
                            Value::String(String::from_utf8_lossy(&body).into())
                        }),
                    );
                    if hang {
                        std::thread::sleep(Duration::from_secs(60));
                        return;
                    }
                    let _ = s.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    );
                });
            }
        });
        Webhook { port, bodies }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    pub fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }

    /// The `event` fields received so far.
    pub fn events(&self) -> Vec<String> {
        self.bodies()
            .iter()
            .filter_map(|b| b["event"].as_str().map(str::to_string))
            .collect()
    }
}
