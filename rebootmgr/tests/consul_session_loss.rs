//! Issue 11, the safety bug: a lost Consul session must never lead to a
//! reboot. rebootmgr's session is destroyed (as an operator or a Consul
//! failure would) at several points of the flow against a real Consul; each
//! run must end with exit 5 and no reboot, and a node that took over the
//! slot meanwhile must be the only one that reboots.

use umm_testsupport as support;

use std::process::Child;
use std::time::{Duration, Instant};
use support::*;
use umm_coord::consul::Consul;
use umm_coord::lock::{Acquire, Semaphore, Session};
use umm_coord::protocol::Keys;

/// Destroys the session rebootmgr created for `node`; true when one existed.
fn destroy_session(a: &Agent, node: &str) -> bool {
    let list = http("GET", &format!("{}/v1/session/list", a.addr()), None);
    let mut found = false;
    for s in list.as_array().cloned().unwrap_or_default() {
        if s["Name"].as_str() == Some(&format!("rebootmgr {node}")) {
            let id = s["ID"].as_str().unwrap();
            http(
                "PUT",
                &format!("{}/v1/session/destroy/{id}", a.addr()),
                None,
            );
            found = true;
        }
    }
    found
}

fn wait_for_slot(c: &Consul, prefix: &str, node: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !holders(c, prefix).iter().any(|h| h == node) {
        assert!(Instant::now() < deadline, "{node} never took the slot");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn exit_of(mut ch: Child) -> Option<i32> {
    ch.wait().unwrap().code()
}

#[test]
fn a_lost_session_never_reboots() {
    let a = Agent::start("sl", None);
    let c = a.client();
    let n = Node::new("sl", &a.addr());
    n.enable(None);
    // The pre-boot task keeps the node in its slot before the settle wait.
    let flag = n.path("task-may-finish");
    n.task(
        "pre",
        "hold",
        &format!("while [ ! -e {} ]; do sleep 0.05; done", flag.display()),
    );

    // 1. Before the settle wait (during the pre-boot tasks).
    let _ = std::fs::remove_file(&flag);
    let ch = n.command(&["run", "--settle", "1"]).spawn().unwrap();
    wait_for_slot(&c, "service/rebootmgr/lock", "sl");
    assert!(destroy_session(&a, "sl"));
    std::fs::write(&flag, "").unwrap();
    assert_eq!(exit_of(ch), Some(5), "lost before the settle wait");
    assert_eq!(n.reboots(), 0);
    assert!(markers(&c).is_empty());
    assert!(!in_maintenance(&c, "sl"));

    // 2. During the settle wait.
    std::fs::write(&flag, "").unwrap();
    let ch = n.command(&["run", "--settle", "3"]).spawn().unwrap();
    wait_for_slot(&c, "service/rebootmgr/lock", "sl");
    std::thread::sleep(Duration::from_millis(800));
    assert!(destroy_session(&a, "sl"));
    assert_eq!(exit_of(ch), Some(5), "lost during the settle wait");
    assert_eq!(n.reboots(), 0);
    assert!(markers(&c).is_empty());
    assert!(!in_maintenance(&c, "sl"));
    assert!(holders(&c, "service/rebootmgr/lock").is_empty());

    // 3. The session lost and a second node took the slot meanwhile (it
    // pruned the first, which has no marker): only the second reboots.
    let m = Node::new("sl2", &a.addr());
    m.enable(None);
    catalog_service(&c, "sl2", "other", &[], "passing");
    let ch = n.command(&["run", "--settle", "4"]).spawn().unwrap();
    wait_for_slot(&c, "service/rebootmgr/lock", "sl");
    std::thread::sleep(Duration::from_millis(300));
    assert!(destroy_session(&a, "sl"));
    let r = m.reboot(&[]);
    assert_eq!(r.code, 0, "the second node takes the freed slot: {r:?}");
    assert_eq!(exit_of(ch), Some(5), "the first node lost its slot");
    assert_eq!(n.reboots(), 0);
    assert_eq!(m.reboots(), 1);
    assert_eq!(
        markers(&c),
        vec!["service/rebootmgr/nodes/sl2/reboot_in_progress".to_string()]
    );
}

/// The moment of commitment itself, without timing: after the session is
/// gone (destroyed after the settle wait and the post-settle checks, right
/// before the marker write), or after another node changed `.lock`, the
/// marker is not written.
#[test]
fn commit_checks_the_session_and_the_lock_in_one_transaction() {
    let a = Agent::start("cm", None);
    let c = a.client();
    let keys = Keys::new("cm", None);
    let sem = Semaphore::for_keys(&keys, 1);
    let s = Session::create(&c, "rebootmgr cm", Duration::from_secs(60)).unwrap();
    assert_eq!(sem.try_acquire(&c, "cm", &s.id).unwrap(), Acquire::Acquired);
    c.session_destroy(&s.id).unwrap();
    assert!(!sem.commit(&c, "cm", &s.id, &keys.marker(), "{}").unwrap());
    assert!(c.kv_get(&keys.marker()).unwrap().is_none());
    assert!(!s.renew_now().unwrap());
    drop(s);

    // A live session whose node was pruned from `.lock`: no commit.
    let s = Session::create(&c, "rebootmgr cm", Duration::from_secs(60)).unwrap();
    assert_eq!(sem.try_acquire(&c, "cm", &s.id).unwrap(), Acquire::Acquired);
    sem.release(&c, "cm").unwrap();
    assert!(!sem.commit(&c, "cm", &s.id, &keys.marker(), "{}").unwrap());
    assert!(c.kv_get(&keys.marker()).unwrap().is_none());

    // Holding the slot with a live session: committed.
    assert_eq!(sem.try_acquire(&c, "cm", &s.id).unwrap(), Acquire::Acquired);
    assert!(s.renew_now().unwrap());
    assert!(sem
        .commit(&c, "cm", &s.id, &keys.marker(), "{\"x\":1}")
        .unwrap());
    assert_eq!(
        c.kv_get(&keys.marker()).unwrap().unwrap().value_str(),
        "{\"x\":1}"
    );
}

/// Many nodes with short settles, their sessions destroyed at random
/// points: never two reboots in one slot (N=1), judged from the recorded
/// reboots and the markers of each round.
#[test]
fn eight_nodes_racing_while_sessions_are_lost() {
    let a = Agent::start("rl", None);
    let c = a.client();
    let ns: Vec<Node> = (0..8)
        .map(|i| Node::new(&format!("rl{i}"), &a.addr()))
        .collect();
    for x in &ns {
        x.enable(None);
    }
    let mut boot = 0;
    for round in 0..6 {
        let children: Vec<(usize, Child)> = ns
            .iter()
            .enumerate()
            .filter(|(_, x)| x.reboots() == 0)
            .map(|(i, x)| (i, x.command(&["run", "--settle", "1"]).spawn().unwrap()))
            .collect();
        if children.is_empty() {
            break;
        }
        // Destroy the first holder's session a varying time into its slot.
        let start = Instant::now();
        let victim = loop {
            let h = holders(&c, "service/rebootmgr/lock");
            if let Some(v) = h.first() {
                break v.clone();
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "nobody took the slot"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        std::thread::sleep(Duration::from_millis(150 * (round % 4) as u64));
        destroy_session(&a, &victim);
        let mut codes = vec![];
        for (i, ch) in children {
            codes.push((i, exit_of(ch)));
        }
        let in_progress = markers(&c);
        assert!(
            in_progress.len() <= 1,
            "round {round}: two reboots in one slot: {in_progress:?} {codes:?}"
        );
        let rebooted: Vec<usize> = codes
            .iter()
            .filter(|(_, code)| *code == Some(0))
            .map(|(i, _)| *i)
            .collect();
        assert!(rebooted.len() <= 1, "round {round}: {codes:?}");
        assert!(
            codes
                .iter()
                .all(|(_, c)| [Some(0), Some(4), Some(5)].contains(c)),
            "round {round}: {codes:?}"
        );
        for i in rebooted {
            assert_eq!(
                in_progress,
                vec![format!(
                    "service/rebootmgr/nodes/{}/reboot_in_progress",
                    ns[i].name
                )]
            );
            boot += 1;
            ns[i].simulate_reboot(&format!("b{boot}"));
            let r = ns[i].reboot(&[]);
            assert_eq!(r.code, 0, "post-boot: {r:?}");
        }
        let total: usize = ns.iter().map(Node::reboots).sum();
        assert_eq!(total, boot, "every recorded reboot had its marker");
    }
    assert!(boot >= 1, "some rounds must reboot a node");
}
