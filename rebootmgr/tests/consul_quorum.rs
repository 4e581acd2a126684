//! Consul's own quorum on a real 3-server Raft cluster (no dev mode) plus a
//! client, each agent standing for a node: a server that died and was removed
//! from Raft (what autopilot's `cleanup_dead_servers` does; here the same
//! removal by `force-leave`, so the test need not wait the 30-75 s autopilot
//! takes) blocks the reboot of another server, never a client's.

use std::time::{Duration, Instant};
use umm_coord::coordination::{self, CoordinationConfig, CoordinationError};
use umm_testsupport::*;

fn member_status(agent: &Agent, name: &str) -> Option<i64> {
    agent
        .client()
        .members()
        .unwrap()
        .into_iter()
        .find(|m| m.name == name)
        .map(|m| m.status)
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not after {secs} s");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_reaped_dead_server_blocks_another_servers_reboot_but_not_a_clients() {
    let s1 = Agent::start_server("q-s1", 3, None);
    let join = s1.serf_lan;
    let s2 = Agent::start_server("q-s2", 3, Some(join));
    let mut s3 = Agent::start_server("q-s3", 3, Some(join));
    wait_raft(&[&s1, &s2, &s3]);
    let client = Agent::start("q-c1", Some(join));
    let s1 = &s1;
    let _s2 = &s2;

    let n_s1 = Node::new(&s1.name, &s1.addr());
    n_s1.enable(None);
    let n_c1 = Node::new(&client.name, &client.addr());
    n_c1.enable(Some("clients"));

    // Healthy 3-server cluster: a server may reboot (2 of 3 stay).
    let r = n_s1.run(&["run", "--settle", "0", "--dry-run"]);
    assert_eq!(r.code, 0, "{r:?}");

    // s3 dies (no leave), and is then removed from Raft as autopilot would.
    s3.kill();
    wait_until("s3 failed", 60, || member_status(s1, "q-s3") == Some(4));
    let r = n_s1.run(&["run", "--settle", "0", "--dry-run"]);
    assert_eq!(r.code, 3, "failed member blocks by the member rule: {r:?}");
    http(
        "PUT",
        &format!("{}/v1/agent/force-leave/q-s3", s1.addr()),
        None,
    );
    wait_until("s3 reaped", 60, || {
        member_status(s1, "q-s3") == Some(3)
            && s1
                .client()
                .raft_servers()
                .map(|v| v.len() == 2)
                .unwrap_or(false)
    });

    // Before this rule: "all checks passed, would reboot". Now: exit 10 naming
    // the quorum, and nothing taken in Consul.
    n_s1.touch_trigger();
    let r = n_s1.reboot(&[]);
    assert_eq!(r.code, 10, "{r:?}");
    assert!(r.stderr.contains("Consul quorum"), "{r:?}");
    assert!(r.stderr.contains("q-s2"), "names the remaining peer: {r:?}");
    assert_eq!(n_s1.reboots(), 0);
    assert!(holders(&s1.client(), "service/rebootmgr/lock").is_empty());
    assert!(!in_maintenance(&s1.client(), &s1.name));
    // status shows the same blocker.
    let st = n_s1.run(&["status", "--json"]);
    assert!(st.stdout.contains("Consul quorum"), "{st:?}");

    // umm's coordinated maintenance on the server is refused the same way.
    let cfg = CoordinationConfig {
        consul: Some(s1.addr()),
        session_ttl: Duration::from_secs(10),
        ..Default::default()
    };
    match coordination::enter_maintenance(&cfg, &s1.name) {
        Err(CoordinationError::QuorumAtRisk(b)) => {
            assert!(b[0].contains("Raft quorum needs 2"), "{b:?}")
        }
        other => panic!("expected QuorumAtRisk, got {other:?}"),
    }
    assert!(!in_maintenance(&s1.client(), &s1.name));

    // A client costs the quorum nothing: it reboots.
    n_c1.touch_trigger();
    let r = n_c1.reboot(&[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(n_c1.reboots(), 1);
}
