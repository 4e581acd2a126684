//! Reboot windows with the real binary and a real Consul dev agent, the
//! clock set by REBOOTMGR_NOW: outside the window the run ends "try later"
//! (exit 12) with nothing written to Consul (no key, no session); inside it
//! proceeds; the KV windows (global, then the group's) replace the node's
//! file; a reboot that the pre-boot task timeouts would push past the end is
//! not started. And `rebootmgr check-config` names file and key.

use umm_testsupport::*;

fn at(n: &Node, now: &str, args: &[&str]) -> Run {
    let start = std::time::Instant::now();
    let mut a = vec!["run", "--settle", "0"];
    a.extend_from_slice(args);
    let out = n.command(&a).env("REBOOTMGR_NOW", now).output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: start.elapsed(),
    }
}

/// Every key under the prefix with its value, and the sessions.
fn consul_state(a: &Agent) -> (Vec<(String, String)>, usize) {
    let kv = a
        .client()
        .kv_list("service/rebootmgr/")
        .unwrap()
        .into_iter()
        .map(|e| {
            let v = e.value_str();
            (e.key, v)
        })
        .collect();
    let sessions = http("GET", &format!("{}/v1/session/list", a.addr()), None);
    (kv, sessions.as_array().map(Vec::len).unwrap_or(0))
}

fn finish_post_boot(n: &Node, boot: &str) {
    n.simulate_reboot(boot);
    // The post-boot phase is not gated by the window (05:00 is outside it).
    let r = at(n, "2026-01-01T05:00:00Z", &[]);
    assert_eq!(r.code, 0, "post-boot: {r:?}");
    assert!(r.stdout.contains("post-boot phase finished"), "{r:?}");
}

#[test]
fn outside_nothing_taken_inside_proceeds_kv_overrides() {
    let a = Agent::start("win", None);
    let c = a.client();
    let n = Node::new("win-n1", &a.addr());
    n.enable(Some("db"));
    // Every day 02:00-04:00 UTC; the node's turn is at most 1 h after 02:00.
    n.root.write(
        "/etc/rebootmgr/rebootmgr.toml",
        "[[window]]\nstart = \"02:00\"\nduration = \"2h\"\ntime_zone = \"UTC\"\n",
    );

    // Outside: exit 12, nothing in Consul changed, no session.
    let before = consul_state(&a);
    assert_eq!(before.1, 0);
    let r = at(&n, "2026-01-01T05:00:00Z", &[]);
    assert_eq!(r.code, 12, "{r:?}");
    assert!(
        r.stderr
            .contains("next window opens Fri 2026-01-02 02:00:00 UTC")
            && r.stderr.contains("windows from rebootmgr.toml"),
        "{r:?}"
    );
    assert_eq!(
        consul_state(&a),
        before,
        "nothing may be taken outside the window"
    );
    assert_eq!(n.reboots(), 0);

    // Inside, past any node's turn (the spread is at most half the window): reboots.
    let r = at(&n, "2026-01-01T03:00:01Z", &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("inside a reboot window"), "{r:?}");
    assert_eq!(n.reboots(), 1);
    finish_post_boot(&n, "boot-2");

    // The global KV window replaces the node's: 03:00 is now outside.
    c.kv_put(
        "service/rebootmgr/window",
        "[[window]]\nstart = \"10:00\"\nduration = \"2h\"\ntime_zone = \"UTC\"\n",
    )
    .unwrap();
    let before = consul_state(&a);
    let r = at(&n, "2026-01-01T03:00:01Z", &[]);
    assert_eq!(r.code, 12, "{r:?}");
    assert!(
        r.stderr.contains("Consul key service/rebootmgr/window"),
        "{r:?}"
    );
    assert_eq!(consul_state(&a), before);
    let r = at(&n, "2026-01-01T11:00:01Z", &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(n.reboots(), 2);
    finish_post_boot(&n, "boot-3");

    // The group's key wins over the global one; no window there = any time.
    c.kv_put("service/rebootmgr/db_window", "window = []\n")
        .unwrap();
    let r = at(&n, "2026-01-01T05:00:00Z", &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(n.reboots(), 3);
    finish_post_boot(&n, "boot-4");

    // A broken KV window is an operator's error (104, naming the key), never "any time".
    c.kv_put(
        "service/rebootmgr/db_window",
        "[[window]]\nstart = \"2am\"\n",
    )
    .unwrap();
    let r = at(&n, "2026-01-01T11:00:01Z", &[]);
    assert_eq!(r.code, 104, "{r:?}");
    assert!(
        r.stderr
            .contains("Consul key service/rebootmgr/db_window: window 1: key 'start'"),
        "{r:?}"
    );
    assert_eq!(n.reboots(), 3);
    c.kv_delete("service/rebootmgr/db_window").unwrap();
    c.kv_delete("service/rebootmgr/window").unwrap();

    // Last-minute refusal: one pre-boot task with a 1 h timeout, window
    // 02:00-04:00: nothing starts after 03:00, even on the node's turn.
    n.task("pre", "10-drain", "exit 0");
    n.root.write(
        "/etc/rebootmgr/rebootmgr.toml.d/10-tasks.toml",
        "task_timeout = \"1h\"\n",
    );
    let before = consul_state(&a);
    let r = at(&n, "2026-01-01T03:00:01Z", &[]);
    assert_eq!(r.code, 12, "{r:?}");
    assert!(r.stderr.contains("too late in the window"), "{r:?}");
    assert_eq!(consul_state(&a), before);
    // The flag wins over the file: with a 10 min task timeout it fits.
    let r = at(&n, "2026-01-01T03:00:01Z", &["--task-timeout", "10min"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(n.reboots(), 4);
}

#[test]
fn check_config_names_file_and_key_and_run_refuses() {
    let a = Agent::start("wincfg", None);
    let n = Node::new("wincfg-n1", &a.addr());
    n.enable(None);
    let r = n.run(&["check-config"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("no config files"), "{r:?}");

    n.root.write(
        "/etc/rebootmgr/rebootmgr.toml",
        "settle = \"30s\"\n[[window]]\nstart = \"02:00\"\nduration = \"1h\"\ntime_zone = \"UTC\"\n",
    );
    let r = n.run(&["check-config"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("settle from /etc/rebootmgr/rebootmgr.toml"),
        "{r:?}"
    );

    n.root.write(
        "/etc/rebootmgr/rebootmgr.toml.d/50-typo.toml",
        "setle = \"30s\"\n[consul]\nca_file = 5\n",
    );
    let r = n.run(&["check-config"]);
    assert_eq!(r.code, 104, "{r:?}");
    for want in [
        "/etc/rebootmgr/rebootmgr.toml.d/50-typo.toml: unknown key 'setle'",
        "/etc/rebootmgr/rebootmgr.toml.d/50-typo.toml: [consul] key 'ca_file'",
    ] {
        assert!(r.stderr.contains(want), "{want}: {r:?}");
    }
    let r = n.run(&["check-config", "--json"]);
    assert_eq!(r.code, 104, "{r:?}");
    let j: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(j["ok"], false);
    assert_eq!(j["errors"].as_array().unwrap().len(), 2, "{j}");
    assert_eq!(j["set"]["settle"], "/etc/rebootmgr/rebootmgr.toml");
    assert_eq!(j["windows"].as_array().unwrap().len(), 1, "{j}");

    // run refuses while the files have errors (a typo must not drop a window).
    let r = n.reboot(&[]);
    assert_eq!(r.code, 104, "{r:?}");
    assert!(r.stderr.contains("rebootmgr check-config"), "{r:?}");
    assert_eq!(n.reboots(), 0);
}

/// `rebootmgr status` shows the windows in force, where they come from and
/// whether a run now may start a reboot (text and `--json`), for a file
/// window with a date (the first Sunday of the month) and a group KV window
/// that replaces it.
#[test]
fn status_shows_the_windows_and_the_verdict() {
    let a = Agent::start("winst", None);
    let c = a.client();
    let n = Node::new("winst-n1", &a.addr());
    n.enable(Some("db"));
    let status = |now: &str, json: bool| {
        let mut args = vec!["status"];
        if json {
            args.push("--json");
        }
        let out = n.command(&args).env("REBOOTMGR_NOW", now).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = status("2026-03-11T12:00:00Z", false);
    assert!(
        text.contains("reboot window:   any time (no [[window]] in rebootmgr.toml)"),
        "{text}"
    );

    n.root.write(
        "/etc/rebootmgr/rebootmgr.toml",
        "settle = \"0s\"\n[[window]]\ncalendar = \"Sun *-*-01..07 02:00 UTC\"\nduration = \"4h\"\n",
    );
    // Wed 2026-03-11: closed, the next first Sunday is 2026-04-05.
    let text = status("2026-03-11T12:00:00Z", false);
    assert!(
        text.contains("reboot window:   closed: outside every reboot window; next window opens Sun 2026-04-05 02:00:00 UTC (windows from rebootmgr.toml)")
            && text.contains("  window:        Sun *-*-01..07 02:00 for 4h (UTC)"),
        "{text}"
    );
    // Sun 2026-04-05 05:00, past any node's turn (at most 2 h after 02:00): open until 06:00.
    let v: serde_json::Value = serde_json::from_str(&status("2026-04-05T05:00:00Z", true)).unwrap();
    let w = &v["window"];
    assert_eq!(w["source"], "rebootmgr.toml", "{w}");
    assert_eq!(w["open"], true, "{w}");
    assert_eq!(w["until_utc"], "2026-04-05 06:00:00 UTC", "{w}");
    assert_eq!(w["until"], 1775368800, "{w}");
    assert!(w["reason"].is_null(), "{w}");

    // The group's KV window replaces the file's.
    c.kv_put(
        "service/rebootmgr/db_window",
        "[[window]]\ndays = [\"Sat\"]\nstart = \"22:00\"\nduration = \"6h\"\ntime_zone = \"UTC\"\n",
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&status("2026-04-05T05:00:00Z", true)).unwrap();
    let w = &v["window"];
    assert_eq!(w["source"], "Consul key service/rebootmgr/db_window", "{w}");
    assert_eq!(
        w["windows"],
        serde_json::json!(["Sat 22:00 for 6h (UTC)"]),
        "{w}"
    );
    assert_eq!(w["open"], false, "{w}");
    assert!(
        w["reason"]
            .as_str()
            .unwrap()
            .contains("next window opens Sat 2026-04-11 22:00:00 UTC"),
        "{w}"
    );
}
