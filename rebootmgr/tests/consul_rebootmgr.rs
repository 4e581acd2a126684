//! rebootmgr against a real Consul (one dev agent per test; extra nodes are
//! catalog-only nodes, so each test owns its whole cluster).

use umm_testsupport as support;

use std::time::{Duration, Instant};
use support::*;

#[test]
fn full_flow_then_post_boot_phase() {
    let a = Agent::start("flow", None);
    let c = a.client();
    agent_service(&a, "web", &["rebootmgr"], true);
    let n = Node::new("flow", &a.addr());
    n.enable(None);
    n.touch_trigger();
    let r = n.reboot(&["--check-triggers"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(n.reboots(), 1);
    assert!(in_maintenance(&c, "flow"));
    assert_eq!(holders(&c, "service/rebootmgr/lock"), vec!["flow"]);
    let shared = c
        .kv_get("service/rebootmgr/reboot_in_progress")
        .unwrap()
        .unwrap();
    assert_eq!(shared.value_str(), "flow");

    // Same boot id: the reboot has not happened yet.
    let r = n.reboot(&["--check-triggers"]);
    assert_eq!(r.code, 8, "{r:?}");

    n.simulate_reboot("boot-2");
    ttl(&a, "web", false);
    let r = n.reboot(&["--check-triggers"]);
    assert_eq!(r.code, 2, "post-boot with a failing check: {r:?}");
    assert!(in_maintenance(&c, "flow"));

    let a_addr = a.addr();
    let flip = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        http(
            "PUT",
            &format!("{a_addr}/v1/agent/check/pass/web-ttl"),
            None,
        );
    });
    let r = n.reboot(&["--check-triggers", "--wait-until-healthy", "30"]);
    flip.join().unwrap();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("post-boot phase finished"), "{r:?}");
    assert!(!in_maintenance(&c, "flow"));
    assert!(holders(&c, "service/rebootmgr/lock").is_empty());
    assert!(markers(&c).is_empty());
    assert!(c
        .kv_get("service/rebootmgr/reboot_in_progress")
        .unwrap()
        .is_none());
    assert_eq!(n.reboots(), 1);

    // Nothing left to do.
    let r = n.reboot(&["--check-triggers"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("nothing to do"), "{r:?}");
    assert_eq!(n.reboots(), 1);
}

/// Finishes a recorded reboot: new boot id, post-boot phase succeeds.
fn finish(n: &Node, boot: &str) {
    n.simulate_reboot(boot);
    let r = n.reboot(&["--check-triggers"]);
    assert_eq!(r.code, 0, "post-boot of {}: {r:?}", n.name);
    assert!(r.stdout.contains("post-boot phase finished"), "{r:?}");
}

#[test]
fn each_trigger_and_the_operator_run() {
    let a = Agent::start("trig", None);
    let c = a.client();
    let n = Node::new("trig", &a.addr());
    n.enable(None);

    let r = n.reboot(&["--check-triggers"]);
    assert_eq!((r.code, n.reboots()), (0, 0), "no trigger: {r:?}");

    n.touch_trigger();
    assert_eq!(n.reboot(&["--check-triggers"]).code, 0);
    assert_eq!(n.reboots(), 1, "file /var/run/reboot-required");
    finish(&n, "b2");

    std::fs::write(n.path("var/run/reboot_required"), "").unwrap();
    assert_eq!(n.reboot(&["--check-triggers"]).code, 0);
    assert_eq!(n.reboots(), 2, "file /var/run/reboot_required");
    finish(&n, "b3");

    c.kv_put("service/rebootmgr/nodes/trig/reboot_required", "kernel")
        .unwrap();
    assert_eq!(n.reboot(&["--check-triggers"]).code, 0);
    assert_eq!(n.reboots(), 3, "KV trigger");
    finish(&n, "b4");
    assert!(
        c.kv_get("service/rebootmgr/nodes/trig/reboot_required")
            .unwrap()
            .is_none(),
        "KV trigger removed after boot"
    );

    // An operator running it without --check-triggers.
    assert_eq!(n.reboot(&[]).code, 0);
    assert_eq!(n.reboots(), 4, "operator run");
    finish(&n, "b5");
}

#[test]
fn stop_flags_global_group_node_and_during_settle() {
    let a = Agent::start("stop", None);
    let c = a.client();
    let n = Node::new("stop", &a.addr());
    n.enable(Some("compute"));
    n.touch_trigger();

    for (key, args) in [
        (
            "service/rebootmgr/stop",
            vec!["stop", "maintenance", "window", "closed"],
        ),
        (
            "service/rebootmgr/compute_stop",
            vec!["stop", "--group", "compute"],
        ),
        (
            "service/rebootmgr/nodes/stop/stop",
            vec!["stop", "--node-flag"],
        ),
    ] {
        let r = n.run(&args);
        assert_eq!(r.code, 0, "{r:?}");
        assert!(c.kv_get(key).unwrap().is_some(), "{key} set by the CLI");
        let r = n.reboot(&["--check-triggers"]);
        assert_eq!(r.code, 102, "{key}: {r:?}");
        assert!(r.stderr.contains(key), "{r:?}");
        assert_eq!(n.reboots(), 0);
        let clear: Vec<&str> = match args[1..].first() {
            Some(&"--group") => vec!["unstop", "--group", "compute"],
            Some(&"--node-flag") => vec!["unstop", "--node-flag"],
            _ => vec!["unstop"],
        };
        assert_eq!(n.run(&clear).code, 0);
        assert!(c.kv_get(key).unwrap().is_none(), "{key} cleared by the CLI");
    }
    assert!(c.kv_get("service/rebootmgr/stop").unwrap().is_none());

    // A flag set during a long settle wait ends the run within seconds and
    // leaves the cluster clean.
    let mut child = n
        .command(&["run", "--check-triggers", "--settle", "120"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while holders(&c, "service/rebootmgr/compute_lock").is_empty() {
        assert!(Instant::now() < deadline, "never took the slot");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    c.kv_put("service/rebootmgr/compute_stop", "stop now")
        .unwrap();
    let set_at = Instant::now();
    let st = child.wait().unwrap();
    let reaction = set_at.elapsed();
    assert_eq!(st.code(), Some(102));
    assert!(
        reaction < Duration::from_secs(3),
        "stop flag took {reaction:?}"
    );
    assert_eq!(n.reboots(), 0);
    assert!(holders(&c, "service/rebootmgr/compute_lock").is_empty());
    assert!(!in_maintenance(&c, "stop"));
    assert!(markers(&c).is_empty());
}

#[test]
fn node_unknown_to_consul_is_refused() {
    let a = Agent::start("unk", None);
    let c = a.client();
    let n = Node::new("typo", &a.addr());
    c.kv_put("service/rebootmgr/nodes/typo/config", r#"{"enabled":true}"#)
        .unwrap();
    let r = n.reboot(&[]);
    assert_eq!(r.code, 104, "{r:?}");
    assert!(r.stderr.contains("not registered"), "{r:?}");
    assert_eq!(n.reboots(), 0);
    assert!(
        c.node_address("typo").unwrap().is_none(),
        "no phantom node created"
    );
}

#[test]
fn node_disabled_or_unconfigured() {
    let a = Agent::start("dis", None);
    let n = Node::new("dis", &a.addr());
    n.touch_trigger();
    let r = n.reboot(&["--check-triggers"]);
    assert_eq!(r.code, 104, "no config: {r:?}");

    assert_eq!(
        n.run(&["config", "--disable", "--message", "broken RAID"])
            .code,
        0
    );
    let r = n.reboot(&["--check-triggers"]);
    assert_eq!(r.code, 101, "{r:?}");
    assert!(r.stderr.contains("broken RAID"), "{r:?}");
    assert_eq!(n.reboots(), 0);

    assert_eq!(n.run(&["config", "--enable"]).code, 0);
    let r = n.run(&["config"]);
    assert!(
        r.stdout.contains("\"enabled\":true") && r.stdout.contains("broken RAID"),
        "{r:?}"
    );
    assert_eq!(n.reboot(&["--check-triggers"]).code, 0);
    assert_eq!(n.reboots(), 1);
}

#[test]
fn lock_held_by_another_node_then_freed_by_session_expiry() {
    let a = Agent::start("lock", None);
    let c = a.client();
    let holder = Node::new("holder", &a.addr());
    let other = Node::new("other", &a.addr());
    holder.enable(None);
    other.enable(None);

    // The holder is killed during its settle wait (before any marker).
    let mut child = holder
        .command(&["run", "--settle", "300", "--session-ttl", "10"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while holders(&c, "service/rebootmgr/lock") != vec!["holder"] {
        assert!(Instant::now() < deadline, "holder never took the slot");
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = other.reboot(&[]);
    assert_eq!(r.code, 4, "slot held by another node: {r:?}");
    assert!(r.stderr.contains("holder"), "{r:?}");

    child.kill().unwrap();
    child.wait().unwrap();
    let killed = Instant::now();
    loop {
        let r = other.reboot(&[]);
        if r.code == 0 {
            break;
        }
        assert_eq!(r.code, 4, "{r:?}");
        // Consul invalidates a TTL session after at most 2 x TTL.
        assert!(
            killed.elapsed() < Duration::from_secs(40),
            "slot never freed"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    eprintln!(
        "slot freed {:?} after the holder was killed",
        killed.elapsed()
    );
    assert_eq!(other.reboots(), 1);
    assert_eq!(holder.reboots(), 0);
    assert_eq!(holders(&c, "service/rebootmgr/lock"), vec!["other"]);
}

#[test]
fn a_rebooting_node_keeps_its_slot_without_a_session() {
    let a = Agent::start("keep", None);
    let c = a.client();
    let first = Node::new("first", &a.addr());
    let second = Node::new("second", &a.addr());
    first.enable(None);
    second.enable(None);
    assert_eq!(first.reboot(&["--session-ttl", "10"]).code, 0);
    // Its session is destroyed on exit; the marker keeps the slot.
    let r = second.reboot(&[]);
    assert_eq!(r.code, 4, "{r:?}");
    let st = first.run(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&st.stdout).expect("status json");
    assert_eq!(v["locks"][0]["holders"][0]["node"], "first", "{v}");
    assert_eq!(v["locks"][0]["holders"][0]["rebooting"], true, "{v}");
    finish(&first, "b2");
    assert_eq!(second.reboot(&[]).code, 0);
    assert_eq!(
        c.kv_get("service/rebootmgr/reboot_in_progress")
            .unwrap()
            .unwrap()
            .value_str(),
        "second"
    );

    // "second" never comes back: an operator frees its slot.
    assert_eq!(first.reboot(&[]).code, 4);
    let r = first.run(&["release"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("first"),
        "--node is always given by the harness: {r:?}"
    );
    let r = second.run(&["release"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(holders(&c, "service/rebootmgr/lock").is_empty());
    assert!(markers(&c).is_empty());
    assert!(c
        .kv_get("service/rebootmgr/reboot_in_progress")
        .unwrap()
        .is_none());
    assert_eq!(first.reboot(&[]).code, 0);
}

/// Runs `nodes` rebootmgr processes at once, rounds until all rebooted;
/// asserts no round ever has more than `n` reboots in progress.
fn race(prefix: &str, nodes: usize, n: u32) {
    let a = Agent::start(prefix, None);
    let c = a.client();
    let ns: Vec<Node> = (0..nodes)
        .map(|i| Node::new(&format!("{prefix}{i}"), &a.addr()))
        .collect();
    // Tasks run only while a node holds its slot: their timestamps bracket
    // part of each node's time in the slot, so overlaps beyond N would be a
    // violation seen from inside, not just from the KV state afterwards.
    let stamps = tempfile::NamedTempFile::new().unwrap();
    let sp = stamps.path().display().to_string();
    for x in &ns {
        x.enable(Some("g"));
        x.touch_trigger();
        x.task(
            "pre",
            "stamp",
            &format!("echo \"start $(date +%s%N)\" >> {sp}"),
        );
        x.task(
            "post",
            "stamp",
            &format!("echo \"end $(date +%s%N)\" >> {sp}"),
        );
    }
    let max = n.to_string();
    let mut rounds = 0;
    let mut boot = 1;
    while ns.iter().any(|x| x.reboots() == 0) {
        rounds += 1;
        assert!(rounds <= nodes + 2, "too many rounds");
        let children: Vec<_> = ns
            .iter()
            .filter(|x| x.reboots() == 0)
            .map(|x| {
                x.command(&[
                    "run",
                    "--check-triggers",
                    "--settle",
                    "1",
                    "--max-parallel",
                    &max,
                ])
                .spawn()
                .unwrap()
            })
            .collect();
        let mut codes = vec![];
        for mut ch in children {
            codes.push(ch.wait().unwrap().code());
        }
        let in_progress = markers(&c).len();
        assert!(
            in_progress <= n as usize,
            "round {rounds}: {in_progress} in progress > {n}: {codes:?}"
        );
        assert!(
            in_progress >= 1,
            "round {rounds}: nobody got a slot: {codes:?}"
        );
        assert!(
            codes.iter().all(|c| *c == Some(0) || *c == Some(4)),
            "{codes:?}"
        );
        assert!(holders(&c, "service/rebootmgr/g_lock").len() <= n as usize);
        boot += 1;
        for x in &ns {
            if c.kv_get(&format!(
                "service/rebootmgr/nodes/{}/reboot_in_progress",
                x.name
            ))
            .unwrap()
            .is_some()
            {
                finish(x, &format!("b{boot}"));
            }
        }
    }
    assert!(ns.iter().all(|x| x.reboots() == 1));
    assert!(holders(&c, "service/rebootmgr/g_lock").is_empty());
    let mut events: Vec<(u128, i32)> = std::fs::read_to_string(stamps.path())
        .unwrap()
        .lines()
        .map(|l| {
            let (what, t) = l.split_once(' ').unwrap();
            (t.parse().unwrap(), if what == "start" { 1 } else { -1 })
        })
        .collect();
    assert_eq!(
        events.len(),
        2 * nodes,
        "one pre and one post task per node"
    );
    events.sort();
    let (mut cur, mut maxc) = (0, 0);
    for (_, d) in events {
        cur += d;
        maxc = maxc.max(cur);
    }
    assert!(
        maxc <= n as i32,
        "{maxc} nodes inside their slot at once, N={n}"
    );
    eprintln!("{nodes} nodes, N={n}: {rounds} rounds");
}

#[test]
fn two_nodes_racing_n1() {
    race("two", 2, 1);
}

#[test]
fn eight_nodes_racing_n1() {
    race("eight", 8, 1);
}

#[test]
fn ten_nodes_racing_n3() {
    race("ten", 10, 3);
}

#[test]
fn health_rules() {
    let a = Agent::start("hr", None);
    let c = a.client();
    let n = Node::new("hr", &a.addr());
    n.enable(None);
    let reboot_then_finish = |boot: &str| {
        let r = n.reboot(&[]);
        assert_eq!(r.code, 0, "{r:?}");
        finish(&n, boot);
    };

    // A failing instance of a relevant service elsewhere blocks.
    agent_service(&a, "db", &["rebootmgr"], true);
    catalog_service(&c, "peer1", "db", &["rebootmgr"], "critical");
    let r = n.reboot(&[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("peer1"), "{r:?}");
    // Untagged services do not count.
    http(
        "PUT",
        &format!("{}/v1/agent/service/register", a.addr()),
        Some(serde_json::json!({"ID": "db", "Name": "db", "Tags": []})),
    );
    reboot_then_finish("b2");

    // Maintenance on another node counts as failing unless ignore_maintenance.
    agent_service(&a, "mq", &["rebootmgr"], true);
    catalog_service(&c, "peer2", "mq", &["rebootmgr"], "passing");
    c.catalog_maintenance("peer2", true, "test").unwrap();
    let r = n.reboot(&[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("_node_maintenance"), "{r:?}");
    agent_service(&a, "mq", &["rebootmgr", "ignore_maintenance"], true);
    reboot_then_finish("b3");
    c.catalog_maintenance("peer2", false, "").unwrap();

    // min_passing=2: a single gateway is never rebooted; with two it is.
    agent_service(&a, "gw", &["rebootmgr", "min_passing=2"], true);
    let r = n.reboot(&[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("min_passing=2"), "{r:?}");
    catalog_service(&c, "gw2", "gw", &["rebootmgr"], "passing");
    reboot_then_finish("b4");
    catalog_service(&c, "gw2", "gw", &["rebootmgr"], "critical");
    assert_eq!(n.reboot(&[]).code, 2, "second gateway down");
    catalog_service(&c, "gw2", "gw", &["rebootmgr"], "passing");

    // max_failing=1 over three instances.
    agent_service(&a, "zk", &["rebootmgr", "max_failing=1"], true);
    catalog_service(&c, "zk2", "zk", &["rebootmgr"], "critical");
    catalog_service(&c, "zk3", "zk", &["rebootmgr"], "passing");
    reboot_then_finish("b5");
    catalog_service(&c, "zk3", "zk", &["rebootmgr"], "critical");
    let r = n.reboot(&[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("max_failing=1"), "{r:?}");
    assert_eq!(n.reboots(), 4);
    assert!(
        holders(&c, "service/rebootmgr/lock").is_empty(),
        "a refused run leaves the slot free"
    );

    let st = n.run(&["status"]);
    assert!(
        st.stdout.contains("blocking:") && st.stdout.contains("zk"),
        "{st:?}"
    );
}

#[test]
fn task_failure_timeout_and_unsafe_task() {
    let a = Agent::start("task", None);
    let c = a.client();
    let n = Node::new("task", &a.addr());
    n.enable(None);
    let later = n.path("later-ran");
    n.task("pre", "10-fail", "exit 7");
    n.task("pre", "20-later", &format!("touch {}", later.display()));
    let r = n.reboot(&[]);
    assert_eq!(r.code, 100, "{r:?}");
    assert!(
        r.stderr.contains("10-fail") && r.stderr.contains("7"),
        "{r:?}"
    );
    assert!(!later.exists());
    assert_eq!(n.reboots(), 0);
    assert!(holders(&c, "service/rebootmgr/lock").is_empty());
    assert!(!in_maintenance(&c, "task"));
    assert!(markers(&c).is_empty());

    n.task("pre", "10-fail", "sleep 60");
    let r = n.reboot(&["--task-timeout", "1"]);
    assert_eq!(r.code, 105, "{r:?}");
    assert!(r.took < Duration::from_secs(15), "{r:?}");
    assert!(holders(&c, "service/rebootmgr/lock").is_empty());
    // A timed-out task disables the node (the Python tool's rule): the
    // timer does not retry the hanging task.
    assert_eq!(n.reboot(&[]).code, 101);
    n.enable(None);

    let p = n.task("pre", "10-fail", "true");
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let r = n.reboot(&[]);
    assert_eq!(r.code, 106, "{r:?}");
    assert!(r.stderr.contains("10-fail"), "{r:?}");

    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let env_out = n.path("env");
    n.task(
        "pre",
        "30-env",
        &format!(
            "echo \"$REBOOTMGR_NODE $REBOOTMGR_PHASE $REBOOTMGR_DRY_RUN\" > {}",
            env_out.display()
        ),
    );
    assert_eq!(n.reboot(&[]).code, 0);
    assert_eq!(
        std::fs::read_to_string(&env_out).unwrap(),
        "task pre_boot \n"
    );
    assert!(later.exists());

    // A failing post-boot task keeps maintenance and the slot; fixed, it finishes.
    n.task("post", "10-reenable", "exit 1");
    n.simulate_reboot("b2");
    let r = n.reboot(&[]);
    assert_eq!(r.code, 100, "{r:?}");
    assert!(in_maintenance(&c, "task"));
    assert_eq!(holders(&c, "service/rebootmgr/lock"), vec!["task"]);
    n.task("post", "10-reenable", "true");
    let r = n.reboot(&[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!in_maintenance(&c, "task"));
}

#[test]
fn stop_flag_interrupts_a_task() {
    let a = Agent::start("stoptask", None);
    let c = a.client();
    let n = Node::new("stoptask", &a.addr());
    n.enable(None);
    n.task("pre", "10-long", "sleep 120");
    let mut child = n.command(&["run", "--settle", "0"]).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    c.kv_put("service/rebootmgr/stop", "incident").unwrap();
    let set_at = Instant::now();
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(102));
    assert!(
        set_at.elapsed() < Duration::from_secs(5),
        "{:?}",
        set_at.elapsed()
    );
    assert!(holders(&c, "service/rebootmgr/lock").is_empty());
    assert_eq!(n.reboots(), 0);
}

#[test]
fn dry_run_changes_nothing() {
    let a = Agent::start("dry", None);
    let c = a.client();
    let n = Node::new("dry", &a.addr());
    n.enable(None);
    let out = n.path("dry");
    n.task(
        "pre",
        "10-t",
        &format!("echo \"$REBOOTMGR_DRY_RUN\" > {}", out.display()),
    );
    let r = n.reboot(&["--dry-run"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("dry run"), "{r:?}");
    assert_eq!(std::fs::read_to_string(out).unwrap(), "1\n");
    assert_eq!(n.reboots(), 0);
    assert!(!in_maintenance(&c, "dry"));
    assert!(markers(&c).is_empty());
    assert!(holders(&c, "service/rebootmgr/lock").is_empty());
}

#[test]
fn consul_unreachable_means_no_reboot() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let n = Node::new("lost", &format!("http://127.0.0.1:{port}"));
    n.touch_trigger();
    let r = n.reboot(&["--check-triggers"]);
    assert_eq!(r.code, 6, "{r:?}");
    assert!(r.stderr.contains("unreachable"), "{r:?}");
    assert_eq!(n.reboots(), 0);
    // Without --node it cannot even learn its name: same code.
    let r = n.run(&["status"]);
    assert_eq!(r.code, 6, "{r:?}");
}

#[test]
fn only_one_instance_at_a_time() {
    let a = Agent::start("single", None);
    let n = Node::new("single", &a.addr());
    n.enable(None);
    let mut first = n.command(&["run", "--settle", "30"]).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let r = n.reboot(&[]);
    assert_eq!(r.code, 7, "{r:?}");
    first.kill().unwrap();
    first.wait().unwrap();
}

#[test]
fn sessions_are_destroyed_promptly_and_abandoned_ones_expire() {
    let a = Agent::start("sess", None);
    let c = a.client();
    for _ in 0..20 {
        let start = Instant::now();
        let s = umm_coord::lock::Session::create(&c, "t", Duration::from_secs(600)).unwrap();
        let id = s.id.clone();
        drop(s);
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "drop took {:?}",
            start.elapsed()
        );
        assert!(!c.session_exists(&id).unwrap());
    }
    let s = umm_coord::lock::Session::create(&c, "t", Duration::from_secs(10)).unwrap();
    let id = s.id.clone();
    s.abandon();
    assert!(c.session_exists(&id).unwrap());
}

#[test]
fn reboot_command_failure_rolls_back() {
    let a = Agent::start("rbf", None);
    let c = a.client();
    let n = Node::new("rbf", &a.addr());
    n.enable(None);
    let out = n
        .command(&[
            "run",
            "--settle",
            "0",
            "--reboot-command",
            "/bin/sh",
            "-c",
            "exit 3",
        ])
        .env_remove("REBOOTMGR_REBOOT_RECORD")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(107),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!in_maintenance(&c, "rbf"));
    assert!(markers(&c).is_empty());
    assert!(c
        .kv_get("service/rebootmgr/reboot_in_progress")
        .unwrap()
        .is_none());
    assert!(holders(&c, "service/rebootmgr/lock").is_empty());

    let flag = n.path("rebooted");
    let out = n
        .command(&[
            "run",
            "--settle",
            "0",
            "--reboot-command",
            "touch",
            flag.to_str().unwrap(),
        ])
        .env_remove("REBOOTMGR_REBOOT_RECORD")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(flag.exists());
    assert!(in_maintenance(&c, "rbf"));
}

#[test]
fn an_aborted_run_undoes_the_pre_boot_tasks() {
    let a = Agent::start("undo", None);
    let c = a.client();
    let n = Node::new("undo", &a.addr());
    n.enable(None);
    let log = n.path("log");
    let l = log.display().to_string();
    n.task("pre", "10-prepare", &format!("echo pre >> {l}"));
    n.task(
        "post",
        "10-restore",
        &format!("echo \"post $REBOOTMGR_PHASE\" >> {l}"),
    );
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    let clear = || std::fs::remove_file(&log).unwrap();

    // Trigger gone during the settle wait: nothing to do, undone.
    c.kv_put("service/rebootmgr/nodes/undo/reboot_required", "x")
        .unwrap();
    let mut child = n
        .command(&["run", "--check-triggers", "--settle", "3"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    c.kv_delete("service/rebootmgr/nodes/undo/reboot_required")
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(read(), "pre\npost abort\n");
    clear();

    // A later pre-boot task fails: undone, still exit 100.
    n.task("pre", "20-fail", "exit 1");
    assert_eq!(n.reboot(&[]).code, 100);
    assert_eq!(read(), "pre\npost abort\n");
    clear();
    std::fs::remove_file(n.path("etc/rebootmgr/pre_boot_tasks/20-fail")).unwrap();

    // The undo itself fails: an operator is needed.
    n.task("pre", "20-fail", "exit 1");
    n.task("post", "20-restore-fails", "exit 1");
    let r = n.reboot(&[]);
    assert_eq!(r.code, 100, "{r:?}");
    assert!(
        r.stderr.contains("undoing the pre-boot tasks failed"),
        "{r:?}"
    );
    clear();
    std::fs::remove_file(n.path("etc/rebootmgr/pre_boot_tasks/20-fail")).unwrap();
    std::fs::remove_file(n.path("etc/rebootmgr/post_boot_tasks/20-restore-fails")).unwrap();

    // A stop flag means do nothing more: no undo.
    let mut child = n.command(&["run", "--settle", "30"]).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    c.kv_put("service/rebootmgr/stop", "x").unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(102));
    assert_eq!(read(), "pre\n");
    clear();
    c.kv_delete("service/rebootmgr/stop").unwrap();

    // Dry run: tasks only reported, nothing to undo.
    assert_eq!(n.reboot(&["--dry-run"]).code, 0);
    assert_eq!(read(), "pre\n");
    clear();

    // The real thing: pre now, post after the boot.
    assert_eq!(n.reboot(&[]).code, 0);
    assert_eq!(read(), "pre\n");
    finish(&n, "b2");
    assert_eq!(read(), "pre\npost post_boot\n");
    assert!(holders(&c, "service/rebootmgr/lock").is_empty());
}

#[test]
fn phase_tags_lock_lost_and_did_not_reboot() {
    let a = Agent::start("misc", None);
    let c = a.client();
    let n = Node::new("misc", &a.addr());
    n.enable(None);

    // rebootmgr_postboot counts only after the reboot, rebootmgr_preboot only before.
    agent_service(&a, "late", &["rebootmgr_postboot"], false);
    assert_eq!(
        n.reboot(&[]).code,
        0,
        "a failing post-boot-only check does not block the reboot"
    );
    n.simulate_reboot("b2");
    let r = n.reboot(&[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("late"), "{r:?}");
    ttl(&a, "late", true);
    agent_service(&a, "early", &["rebootmgr_preboot"], false);
    let r = n.reboot(&[]);
    assert_eq!(
        r.code, 0,
        "a failing pre-boot-only check does not block the post-boot phase: {r:?}"
    );
    let r = n.reboot(&[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("early"), "{r:?}");
    ttl(&a, "early", true);

    // The slot taken away during the settle wait (operator override): lock lost.
    let mut child = n.command(&["run", "--settle", "3"]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while holders(&c, "service/rebootmgr/lock").is_empty() {
        assert!(Instant::now() < deadline, "never took the slot");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(n.run(&["release"]).code, 0);
    assert_eq!(child.wait().unwrap().code(), Some(5));
    assert_eq!(n.reboots(), 1);

    // A marker from this boot, written long ago: the reboot never happened.
    c.kv_put(
        "service/rebootmgr/nodes/misc/reboot_in_progress",
        r#"{"owner":"rebootmgr","boot_id":"b2","since":1000}"#,
    )
    .unwrap();
    let r = n.reboot(&[]);
    assert_eq!(r.code, 103, "{r:?}");
    assert!(r.stderr.contains("did not reboot"), "{r:?}");
}

#[test]
fn acl_token_from_the_environment() {
    let a = Agent::start_with("acl", None, Some("s3cret-master"));
    let c = a.client();
    c.kv_put("service/rebootmgr/nodes/acl/config", r#"{"enabled":true}"#)
        .unwrap();
    let n = Node::new("acl", &a.addr());
    let r = n.reboot(&[]);
    assert_eq!(r.code, 109, "no token: {r:?}");
    assert_eq!(n.reboots(), 0);
    let out = n
        .command(&["run", "--settle", "0"])
        .env("CONSUL_HTTP_TOKEN", "s3cret-master")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(n.reboots(), 1);
    assert!(in_maintenance(&c, "acl"));
}
