//! rebootmgr against a real Consul (one dev agent per test; extra nodes are
//! catalog-only nodes, so each test owns its whole cluster).

mod support;

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
