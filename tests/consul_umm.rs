//! `umm on` / `umm off` with `[coordination]`, against a real Consul cluster:
//! entering takes the group's slot and sets Consul node maintenance; a second
//! node in the same group is refused; leaving waits for the node's checks.

use umm_testsupport as support;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use support::*;

const UMM: &str = env!("CARGO_BIN_EXE_umm");

fn fake_root(consul: &str, healthy_timeout: &str) -> FakeRoot {
    let d = FakeRoot::booted("b1", None);
    for dir in ["var/lib/umm", "run/umm"] {
        d.mkdir(dir);
    }
    d.write(
        "etc/umm/umm.toml",
        &format!("[coordination]\nconsul = \"{consul}\"\ngroup = \"controllers\"\nsession_ttl = \"10s\"\nhealthy_timeout = \"{healthy_timeout}\"\n"),
    );
    d
}

fn umm(root: &Path, args: &[&str]) -> Output {
    Command::new(UMM)
        .args(args)
        .env("UMM_ROOT", root)
        .env_remove("CONSUL_HTTP_ADDR")
        .env_remove("UMM_FAKE_SYSTEMD")
        .env_remove("UMM_FAKE_REBOOT")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn state(root: &Path) -> String {
    fs::read_to_string(root.join("var/lib/umm/state")).unwrap_or_default()
}

#[test]
fn on_takes_the_slot_off_releases_it_when_checks_pass() {
    let agents = cluster("umc", 2);
    let (a1, a2) = (&agents[1], &agents[2]);
    agent_service(a1, "galera", &["rebootmgr"], true);
    let c = a1.client();
    let lock = "service/rebootmgr/controllers_lock";

    let n1 = fake_root(&a1.addr(), "3s");
    let o = umm(n1.path(), &["on", "--no-reboot"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(in_maintenance(&c, &a1.name), "node maintenance not set");
    assert!(
        holders(&c, lock).contains(&a1.name),
        "{:?}",
        holders(&c, lock)
    );
    assert!(state(n1.path()).contains("[request]"));

    // The group has one slot: the second controller is refused, nothing changes.
    let n2 = fake_root(&a2.addr(), "3s");
    let o = umm(n2.path(), &["on", "--no-reboot"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("nothing changed"), "{}", text(&o));
    assert!(!state(n2.path()).contains("[request]"));
    assert!(!in_maintenance(&c, &a2.name));

    // Cancel the request; the release waits for the node's checks.
    let o = umm(n1.path(), &["off"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(n1.path().join("var/lib/umm/coordination-leave").exists());
    ttl(a1, "galera", false);
    let o = umm(n1.path(), &["boot", "coordination-leave"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        in_maintenance(&c, &a1.name),
        "released although checks fail"
    );
    assert!(holders(&c, lock).contains(&a1.name));

    ttl(a1, "galera", true);
    let o = umm(n1.path(), &["boot", "coordination-leave"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!in_maintenance(&c, &a1.name));
    assert!(holders(&c, lock).is_empty(), "{:?}", holders(&c, lock));
    assert!(!n1.path().join("var/lib/umm/coordination-leave").exists());
    let o = umm(n1.path(), &["boot", "coordination-leave"]);
    assert!(text(&o).contains("nothing to release"), "{}", text(&o));

    // Now the second controller may go.
    let o = umm(n2.path(), &["on", "--no-reboot"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(in_maintenance(&c, &a2.name));
}

#[test]
fn unreachable_consul_changes_nothing() {
    let n = fake_root("http://127.0.0.1:1", "3s");
    let o = umm(n.path(), &["on", "--no-reboot"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("[coordination]"), "{}", text(&o));
    assert!(!state(n.path()).contains("[request]"));
}

/// A maintenance boot after a reboot loop, announced while the node's agent
/// and the catalog disagree (after an agent's start the catalog lags behind
/// it): the agent still has the maintenance of the reboot before the loop,
/// the catalog already shows the new reason. The announcement is decided
/// from the agent, where it is written, so the agent ends with the new
/// reason (CI once saw the old one stay: tests/fleet/test_mm_announced.py).
#[test]
fn a_reboot_loop_is_announced_whatever_the_catalog_shows() {
    let agents = cluster("uml", 1);
    let a1 = &agents[1];
    let c = a1.client();
    let n = fake_root(&a1.addr(), "3s");
    n.write("/var/lib/umm/state", "version = 1\nunclean_boots = 3\n");
    n.write(
        "/run/umm/boot",
        "decision=maintenance:reboot-loop\nboot_id=b1\ntime=1\n",
    );
    let old = format!("rebootmgr: rebooting {}", a1.name);
    let new = format!(
        "umm: maintenance mode on {} (after a reboot loop: 3 unclean boots)",
        a1.name
    );
    c.set_node_maintenance(&a1.name, true, &old).unwrap();
    let agent_reason = || {
        http("GET", &format!("{}/v1/agent/checks", a1.addr()), None)["_node_maintenance"]["Notes"]
            .as_str()
            .map(str::to_string)
    };
    assert_eq!(agent_reason().as_deref(), Some(old.as_str()));
    // The catalog's copy says the new reason; the agent's own check does not.
    let node = http(
        "GET",
        &format!("{}/v1/catalog/node/{}", a1.addr(), a1.name),
        None,
    );
    http(
        "PUT",
        &format!("{}/v1/catalog/register", a1.addr()),
        Some(serde_json::json!({
            "Node": a1.name, "Address": node["Node"]["Address"], "SkipNodeUpdate": true,
            "Check": {"Node": a1.name, "CheckID": "_node_maintenance", "Name": "Node Maintenance Mode",
                      "Status": "critical", "Notes": new},
        })),
    );

    let o = umm(n.path(), &["boot", "coordination-leave"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("after a reboot loop"), "{}", text(&o));
    assert_eq!(
        agent_reason().as_deref(),
        Some(new.as_str()),
        "the agent kept the reason of the reboot before the loop"
    );
}
