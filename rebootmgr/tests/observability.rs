//! Metrics and notifications against the real components (docs/metrics.md,
//! docs/rebootmgr.md "Notifications"): Debian's prometheus-node-exporter
//! scraping rebootmgr's textfile on loopback after real runs against a real
//! Consul agent; a webhook receiver and the `chat_escalation` events; the
//! Alertmanager silence held as a lease, against Debian's
//! prometheus-alertmanager.

use serde_json::Value;
use std::time::{Duration, Instant};
use umm_testsupport::prom::{check, sample, Alertmanager, NodeExporter, Webhook};
use umm_testsupport::*;

const PROM: &str = "--metrics-file=/prom/rebootmgr.prom";

fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn node_exporter_scrapes_rebootmgr_metrics_after_real_runs() {
    let a = Agent::start("obs-metrics", None);
    let n = Node::new("m1", &a.addr());
    n.enable(None);
    n.root.mkdir("prom");
    let ne = NodeExporter::start(&n.path("prom"));

    // No trigger: nothing to do, nothing held.
    let before = umm_core::fsutil::now_unix();
    let r = n.run(&["run", "--check-triggers", PROM]);
    assert_eq!(r.code, 0, "{r:?}");
    let after = umm_core::fsutil::now_unix();
    let text = ne.scrape();
    assert!(
        text.contains("# TYPE rebootmgr_reboot_required gauge")
            && text.contains("# HELP rebootmgr_slot_held "),
        "{text}"
    );
    check(
        &text,
        &[
            ("rebootmgr_reboot_required", "", 0.0),
            ("rebootmgr_slot_held", "", 0.0),
            ("rebootmgr_last_run_result", "result=\"nothing_to_do\"", 1.0),
            ("rebootmgr_blocked", "reason=\"\"", 0.0),
        ],
    );
    let t = sample(&text, "rebootmgr_last_run_timestamp_seconds", "").unwrap();
    assert!(
        (before as f64..=after as f64).contains(&t),
        "{t} not in {before}..{after}"
    );

    // A stop flag holds the required reboot back.
    n.touch_trigger();
    assert_eq!(n.run(&["stop", "patching"]).code, 0);
    let r = n.reboot(&["--check-triggers", PROM]);
    assert_eq!(r.code, 102, "{r:?}");
    check(
        &ne.scrape(),
        &[
            ("rebootmgr_blocked", "reason=\"stop_flag\"", 1.0),
            ("rebootmgr_reboot_required", "", 1.0),
            ("rebootmgr_last_run_exit_code", "", 102.0),
        ],
    );

    // The reboot: the slot is held across it.
    assert_eq!(n.run(&["unstop"]).code, 0);
    let r = n.reboot(&["--check-triggers", PROM]);
    assert_eq!((r.code, n.reboots()), (0, 1), "{r:?}");
    check(
        &ne.scrape(),
        &[
            ("rebootmgr_slot_held", "", 1.0),
            ("rebootmgr_reboot_required", "", 1.0),
            ("rebootmgr_last_run_result", "result=\"reboot_issued\"", 1.0),
        ],
    );

    // A peer of the group is held back by the slot.
    let m2 = Node::new("m2", &a.addr());
    m2.enable(None);
    m2.touch_trigger();
    m2.root.mkdir("prom");
    let ne2 = NodeExporter::start(&m2.path("prom"));
    let r = m2.reboot(&["--check-triggers", PROM]);
    assert_eq!(r.code, 4, "{r:?}");
    check(
        &ne2.scrape(),
        &[
            ("rebootmgr_blocked", "reason=\"lock_busy\"", 1.0),
            ("rebootmgr_slot_held", "", 0.0),
        ],
    );

    // Back after the reboot: post-boot phase finished, nothing held.
    n.simulate_reboot("boot-2");
    let r = n.run(&["run", "--check-triggers", PROM]);
    assert_eq!(r.code, 0, "{r:?}");
    check(
        &ne.scrape(),
        &[
            ("rebootmgr_slot_held", "", 0.0),
            ("rebootmgr_reboot_required", "", 0.0),
            (
                "rebootmgr_last_run_result",
                "result=\"post_boot_finished\"",
                1.0,
            ),
        ],
    );

    // No textfile directory for a file the operator named: a warning, the run is not failed.
    let r = n.run(&[
        "run",
        "--check-triggers",
        "--metrics-file=/nowhere/rebootmgr.prom",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("warning: metrics not written") && r.stderr.contains("does not exist"),
        "{r:?}"
    );
    // The default file on a node without node_exporter: said, but not as a
    // warning at every timer run.
    assert!(!n.path("var/lib/prometheus").exists());
    let r = n.run(&["run", "--check-triggers"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("metrics not written") && !r.stderr.contains("warning: metrics"),
        "{r:?}"
    );
    assert!(!n.path("nowhere").exists());
    // The environment sets the file too.
    let out = n
        .command(&["run", "--check-triggers"])
        .env("REBOOTMGR_METRICS_FILE", "/prom/env.prom")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(n.path("prom/env.prom").exists());
}

#[test]
fn webhook_chat_events_and_the_alertmanager_silence_follow_the_slot() {
    let a = Agent::start("obs-notify", None);
    let am = Alertmanager::start();
    let hook = Webhook::start(false);
    let n = Node::new("w1", &a.addr());
    n.enable(Some("web"));
    n.touch_trigger();
    let notify = [
        format!("--webhook-url={}", hook.url()),
        format!("--alertmanager-url={}", am.url()),
        "--silence-lease=6s".to_string(),
    ];
    // `extra` plus the notification flags, as one argv.
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        v.extend(notify.iter().cloned());
        v
    };
    let run = |n: &Node, extra: &[&str]| {
        let v = args(extra);
        n.run(&v.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let active = || {
        am.silences_of("node", "w1")
            .into_iter()
            .filter(|s| s["status"]["state"] == "active")
            .collect::<Vec<Value>>()
    };

    // The settle wait holds the slot: the silence is there and renewed.
    let a1 = args(&["run", "--check-triggers", "--settle", "5"]);
    let child = n
        .command(&a1.iter().map(String::as_str).collect::<Vec<_>>())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let first = wait_for("an active silence while the slot is held", 10, || {
        active().into_iter().next()
    });
    assert_eq!(first["createdBy"], "rebootmgr", "{first}");
    assert_eq!(first["matchers"][0]["isRegex"], false, "{first}");
    let renewed = wait_for("the silence renewed (same id, later endsAt)", 10, || {
        active()
            .into_iter()
            .find(|s| s["id"] == first["id"] && s["endsAt"] != first["endsAt"])
    });
    assert!(
        renewed["endsAt"].as_str() > first["endsAt"].as_str(),
        "{first} → {renewed}"
    );
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(n.reboots(), 1);
    // Kept across the reboot (the node is down: nothing renews it now).
    assert_eq!(active().len(), 1, "{:?}", am.silences());
    assert_eq!(hook.events(), vec!["reboot_starting"]);
    let b = &hook.bodies()[0];
    assert_eq!(b["text"], "rebootmgr: (w1) (web) rebooting w1", "{b}");
    assert_eq!(
        (b["node"].as_str(), b["group"].as_str()),
        (Some("w1"), Some("web"))
    );

    // Back, but paused in umm's maintenance mode (the landing zone, exit 9):
    // the slot stays held, the silence is renewed.
    n.simulate_reboot("boot-2");
    let kept = active().remove(0);
    std::thread::sleep(Duration::from_millis(1100));
    n.root.write(
        "/run/umm/boot",
        "decision=maintenance:requested\nboot_id=boot-2\ntime=1\n",
    );
    let r = run(&n, &["run", "--check-triggers"]);
    assert_eq!(r.code, 9, "{r:?}");
    let now = active();
    assert_eq!(now.len(), 1, "{:?}", am.silences());
    assert_eq!(now[0]["id"], kept["id"]);
    assert!(
        now[0]["endsAt"].as_str() > kept["endsAt"].as_str(),
        "{kept} → {}",
        now[0]
    );
    std::fs::remove_file(n.path("run/umm/boot")).unwrap();

    // Back: post-boot phase, slot released, silence expired.
    let r = run(&n, &["run", "--check-triggers"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(active().is_empty(), "{:?}", am.silences());
    assert!(
        am.silences_of("node", "w1")
            .iter()
            .all(|s| s["status"]["state"] == "expired"),
        "{:?}",
        am.silences()
    );
    assert_eq!(hook.events(), vec!["reboot_starting", "back_healthy"]);
    let ev = chat_events(&a);
    assert_eq!(
        ev,
        vec![
            "(w1) (web) rebooting w1".to_string(),
            "(w1) (web) w1 is back and healthy after its reboot; slot released".to_string()
        ]
    );

    // A failed task: webhook and chat_escalation, and the silence of the
    // slot it held is gone with the slot.
    n.touch_trigger();
    n.task("pre", "10-fail", "#!/bin/sh\nexit 3\n");
    let r = run(&n, &["run", "--check-triggers", "--settle", "0"]);
    assert_eq!(r.code, 100, "{r:?}");
    assert_eq!(
        hook.events().last().map(String::as_str),
        Some("task_failed")
    );
    assert_eq!(chat_events(&a).len(), 3);
    assert!(active().is_empty(), "{:?}", am.silences());

    // A stuck slot: w2 rebooted and never came back; w3 of its group reports it.
    let w2 = Node::new("w2", &a.addr());
    w2.enable(Some("db"));
    assert_eq!(w2.reboot(&[]).code, 0);
    let w3 = Node::new("w3", &a.addr());
    w3.enable(Some("db"));
    w3.touch_trigger();
    let a3 = ["run", "--check-triggers", "--stuck-after", "0"];
    let r = run(&w3, &a3);
    assert_eq!(r.code, 4, "{r:?}");
    let stuck = hook
        .bodies()
        .into_iter()
        .find(|b| b["event"] == "slot_stuck")
        .unwrap_or_else(|| panic!("no slot_stuck: {:?}", hook.bodies()));
    assert_eq!(
        (stuck["node"].as_str(), stuck["reported_by"].as_str()),
        (Some("w2"), Some("w3"))
    );
    assert!(chat_events(&a)
        .iter()
        .any(|e| e.starts_with("(w2) (db) w2 has held")));
    // Reported once per change of the stuck set, not on every run.
    let before = hook.events().len();
    assert_eq!(run(&w3, &a3).code, 4);
    assert_eq!(hook.events().len(), before);
}

#[test]
fn the_silence_lapses_when_rebootmgr_dies_and_a_bad_webhook_never_blocks() {
    let a = Agent::start("obs-lease", None);
    let am = Alertmanager::start();
    let n = Node::new("k1", &a.addr());
    n.enable(None);
    n.touch_trigger();
    let url = format!("--alertmanager-url={}", am.url());
    // Refused by the health check: the slot is released at once, no silence.
    let c = a.client();
    catalog_service(&c, "k1", "app", &["rebootmgr"], "critical");
    let r = n.reboot(&["--check-triggers", &url]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(am.silences().is_empty(), "{:?}", am.silences());
    catalog_service(&c, "k1", "app", &["rebootmgr"], "passing");
    let mut child = n
        .command(&[
            "run",
            "--check-triggers",
            "--settle",
            "60",
            &url,
            "--silence-lease=3s",
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let s = wait_for("an active silence", 10, || {
        am.silences_of("node", "k1")
            .into_iter()
            .find(|s| s["status"]["state"] == "active")
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = Instant::now();
    wait_for("the silence to lapse after the kill", 10, || {
        am.silences_of("node", "k1")
            .iter()
            .all(|s| s["status"]["state"] == "expired")
            .then_some(())
    });
    assert!(killed.elapsed() < Duration::from_secs(10));
    let now = am.silences_of("node", "k1");
    assert_eq!(now.len(), 1, "{now:?}");
    assert_eq!(now[0]["id"], s["id"]);

    // A webhook that never answers and one that refuses: the reboot happens,
    // each failure is logged.
    let hang = Webhook::start(true);
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!(
        "http://127.0.0.1:{}/hook",
        dead.local_addr().unwrap().port()
    );
    drop(dead);
    let n2 = Node::new("k2", &a.addr());
    n2.enable(Some("g2"));
    n2.touch_trigger();
    let hook = format!("--webhook-url={}", hang.url());
    let r = n2.reboot(&["--check-triggers", &hook, "--notify-timeout=1s"]);
    assert_eq!((r.code, n2.reboots()), (0, 1), "{r:?}");
    assert!(r.stderr.contains("reboot_starting not sent"), "{r:?}");
    assert_eq!(hang.events(), vec!["reboot_starting"]);
    n2.simulate_reboot("boot-2");
    let hook = format!("--webhook-url={dead_url}");
    let r = n2.run(&["run", "--check-triggers", &hook]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("back_healthy not sent"), "{r:?}");
    // A bad setting is a usage error naming it, before anything is taken.
    let r = n2.run(&["run", "--webhook-url=hooks.example/x"]);
    assert_eq!(r.code, 110, "{r:?}");
    assert!(r.stderr.contains("webhook_url"), "{r:?}");
}

/// An HTTPS receiver (Python's http.server in an ssl context): appends each
/// POST body as a line to `log`.
const HTTPS_RECEIVER: &str = r#"
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open(sys.argv[4], "ab") as f:
            f.write(body + b"\n")
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
s.socket = ctx.wrap_socket(s.socket, server_side=True)
print("ready", flush=True)
s.serve_forever()
"#;

#[test]
fn an_https_webhook_is_checked_against_the_system_ca_bundle() {
    let a = Agent::start("obs-https", None);
    // A CA and a server certificate for localhost, made by `consul tls`.
    let pki = tempfile::tempdir().unwrap();
    for args in [
        &["ca", "create"][..],
        &["cert", "create", "-server", "-dc", "dc1"],
    ] {
        let out = std::process::Command::new(consul_bin())
            .arg("tls")
            .args(args)
            .current_dir(pki.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "consul tls {args:?}: {out:?}");
    }
    let log = pki.path().join("received");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Killed(
        std::process::Command::new("python3")
            .args(["-c", HTTPS_RECEIVER, &port.to_string()])
            .arg(pki.path().join("dc1-server-consul-0.pem"))
            .arg(pki.path().join("dc1-server-consul-0-key.pem"))
            .arg(&log)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.0.stdout.take().unwrap()),
        &mut ready,
    )
    .unwrap();
    assert_eq!(ready.trim(), "ready");
    let hook = format!("--webhook-url=https://localhost:{port}/hook");

    // The CA is in the node's system bundle: the webhook is delivered.
    let n = Node::new("h1", &a.addr());
    n.enable(Some("ga"));
    n.root.write(
        "/etc/ssl/certs/ca-certificates.crt",
        &std::fs::read_to_string(pki.path().join("consul-agent-ca.pem")).unwrap(),
    );
    let r = n.reboot(&[&hook]);
    assert_eq!((r.code, n.reboots()), (0, 1), "{r:?}");
    let got = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        got.contains("\"event\":\"reboot_starting\""),
        "{got:?} {r:?}"
    );

    // Not in the bundle: refused (logged), and the reboot happens all the same.
    let n2 = Node::new("h2", &a.addr());
    n2.enable(Some("gb"));
    let r = n2.reboot(&[&hook]);
    assert_eq!((r.code, n2.reboots()), (0, 1), "{r:?}");
    assert!(r.stderr.contains("reboot_starting not sent"), "{r:?}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), got);
}

#[test]
fn notify_and_metrics_tables_of_the_config_file_reach_a_real_run() {
    let a = Agent::start("obs-file", None);
    let hook = Webhook::start(false);
    let env_hook = Webhook::start(false);
    let n = Node::new("cf1", &a.addr());
    n.enable(None);
    n.root.mkdir("prom");
    n.root.write(
        "/etc/rebootmgr/rebootmgr.toml",
        &format!(
            "[metrics]\nfile = \"/prom/file.prom\"\n[notify]\nwebhook_url = \"{}\"\nchat_escalation = false\n",
            hook.url()
        ),
    );
    let r = n.run(&["check-config"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("notify from /etc/rebootmgr/rebootmgr.toml"),
        "{r:?}"
    );

    // No flag, no variable: the file's webhook and metrics file are used.
    n.touch_trigger();
    let r = n.reboot(&[]);
    assert_eq!((r.code, n.reboots()), (0, 1), "{r:?}");
    assert_eq!(hook.events(), vec!["reboot_starting"]);
    assert_eq!(
        chat_events(&a),
        Vec::<String>::new(),
        "chat_escalation = false"
    );
    let text = std::fs::read_to_string(n.path("prom/file.prom")).unwrap();
    check(
        &text,
        &[
            ("rebootmgr_last_run_result", "result=\"reboot_issued\"", 1.0),
            ("rebootmgr_slot_held", "", 1.0),
        ],
    );

    // The environment wins over the file (and the file's other keys stay).
    n.simulate_reboot("boot-2");
    let out = n
        .command(&["run"])
        .env("REBOOTMGR_WEBHOOK_URL", env_hook.url())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(env_hook.events(), vec!["back_healthy"]);
    assert_eq!(hook.events(), vec!["reboot_starting"]);
    assert_eq!(chat_events(&a), Vec::<String>::new());

    // A bad value: check-config names file and key, run refuses (104) and
    // its metrics say so (written with the earlier files' [metrics]).
    n.root.write(
        "/etc/rebootmgr/rebootmgr.toml.d/50-am.toml",
        "[notify]\nalertmanager_url = \"alertmanager:9093\"\n",
    );
    let r = n.run(&["check-config"]);
    assert_eq!(r.code, 104, "{r:?}");
    assert!(
        r.stderr.contains(
            "/etc/rebootmgr/rebootmgr.toml.d/50-am.toml: [notify] key alertmanager_url 'alertmanager:9093': expected an http:// or https:// URL"
        ),
        "{r:?}"
    );
    n.touch_trigger();
    let r = n.reboot(&[]);
    assert_eq!((r.code, n.reboots()), (104, 1), "{r:?}");
    let text = std::fs::read_to_string(n.path("prom/file.prom")).unwrap();
    check(
        &text,
        &[
            ("rebootmgr_last_run_exit_code", "", 104.0),
            (
                "rebootmgr_last_run_result",
                "result=\"not_configured\"",
                1.0,
            ),
        ],
    );
}

/// A child killed when the test ends, passed or not.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
