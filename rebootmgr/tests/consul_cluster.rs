//! rebootmgr and umm's coordination on a real multi-agent Consul cluster on
//! loopback: a dev server and client agents, each standing for a node.

use umm_testsupport as support;

use std::time::{Duration, Instant};
use support::*;
use umm_coord::coordination::{self, CoordinationConfig, CoordinationError};

fn wait_member_failed(agent: &Agent, name: &str) {
    let c = agent.client();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = c.members().unwrap();
        if m.iter().any(|m| m.name == name && m.status == 4) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never marked failed: {m:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn dead_member_blocks_and_agent_maintenance_is_used() {
    let mut agents = cluster("dm", 2);
    let c1 = &agents[1];
    agent_service(c1, "web", &["rebootmgr"], true);
    let n1 = Node::new(&c1.name, &c1.addr());
    n1.enable(None);

    // Node name comes from the local agent when --node is not given.
    let mut cmd = n1.command(&["run", "--settle", "0", "--dry-run"]);
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert_eq!(args[2..4], ["--node".to_string(), c1.name.clone()]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rebootmgr"))
        .args(["status", "--json"])
        .env("CONSUL_HTTP_ADDR", c1.addr())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["node"], c1.name.as_str(), "{v}");
    assert_eq!(cmd.status().unwrap().code(), Some(0));

    agents[2].kill();
    let dead = agents[2].name.clone();
    wait_member_failed(&agents[1], &dead);
    let r = n1.reboot(&[]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains(&dead), "{r:?}");
    assert_eq!(n1.reboots(), 0);

    // Force the dead member out: it counts as left, reboots may go on.
    let c1 = &agents[1];
    http(
        "PUT",
        &format!("{}/v1/agent/force-leave/{dead}", c1.addr()),
        None,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let r = loop {
        let r = n1.reboot(&[]);
        if r.code != 3 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(r.code, 0, "{r:?}");
    // The agent's own maintenance API was used: the agent reports it.
    let maint = http("GET", &format!("{}/v1/agent/checks", c1.addr()), None);
    let reason = maint["_node_maintenance"]["Notes"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(reason.contains("rebootmgr"), "{maint}");
    n1.simulate_reboot("b2");
    let r = n1.reboot(&[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!in_maintenance(&c1.client(), &c1.name));
}

#[test]
fn umm_coordination_takes_the_slot_and_waits_for_checks() {
    let agents = cluster("co", 2);
    let (c1, c2) = (&agents[1], &agents[2]);
    agent_service(c1, "api", &["rebootmgr"], true);
    let n2 = Node::new(&c2.name, &c2.addr());
    n2.enable(Some("ctl"));
    let cfg = CoordinationConfig {
        consul: Some(c1.addr()),
        group: Some("ctl".into()),
        session_ttl: Duration::from_secs(10),
        healthy_timeout: Duration::from_secs(30),
        poll: Duration::from_millis(200),
        ..Default::default()
    };
    coordination::enter_maintenance(&cfg, &c1.name).unwrap();
    let c = c1.client();
    assert!(in_maintenance(&c, &c1.name));
    let agent_checks = http("GET", &format!("{}/v1/agent/checks", c1.addr()), None);
    assert!(
        agent_checks["_node_maintenance"]["Notes"]
            .as_str()
            .unwrap_or("")
            .contains("umm"),
        "{agent_checks}"
    );
    assert_eq!(
        holders(&c, "service/rebootmgr/ctl_lock"),
        vec![c1.name.clone()]
    );
    // Idempotent.
    coordination::enter_maintenance(&cfg, &c1.name).unwrap();

    // The slot survives the umm process (its session) and blocks the group.
    std::thread::sleep(Duration::from_secs(1));
    let r = n2.reboot(&[]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains(&c1.name), "{r:?}");
    // A second node cannot enter maintenance either.
    match coordination::enter_maintenance(&cfg, &c2.name) {
        Err(CoordinationError::Busy { holders, limit: 1 }) => {
            assert_eq!(holders, vec![c1.name.clone()])
        }
        other => panic!("expected Busy, got {other:?}"),
    }

    // rebootmgr on the node in umm maintenance leaves it alone.
    let n1 = Node::new(&c1.name, &c1.addr());
    n1.enable(Some("ctl"));
    let r = n1.reboot(&[]);
    assert_eq!(r.code, 9, "{r:?}");
    assert_eq!(n1.reboots(), 0);

    // Leaving waits for this node's own checks.
    ttl(c1, "api", false);
    let short = CoordinationConfig {
        healthy_timeout: Duration::from_secs(1),
        ..cfg.clone()
    };
    assert!(matches!(
        coordination::leave_maintenance(&short, &c1.name),
        Err(CoordinationError::Unhealthy(_))
    ));
    assert!(
        in_maintenance(&c, &c1.name),
        "still in maintenance after a failed leave"
    );
    let c1_addr = c1.addr();
    let flip = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        http(
            "PUT",
            &format!("{c1_addr}/v1/agent/check/pass/api-ttl"),
            None,
        );
    });
    let start = Instant::now();
    coordination::leave_maintenance(&cfg, &c1.name).unwrap();
    flip.join().unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "left before the check passed"
    );
    assert!(!in_maintenance(&c, &c1.name));
    assert!(holders(&c, "service/rebootmgr/ctl_lock").is_empty());
    assert!(markers(&c).is_empty());

    // And the group moves on.
    let r = n2.reboot(&[]);
    assert_eq!(r.code, 0, "{r:?}");
}
