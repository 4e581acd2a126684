//! Issue 10 for rebootmgr: huge durations, panics, and task trust (the
//! task runner is umm's, `umm_core::tasks`). Against a real Consul agent
//! where the flow needs one.

use umm_testsupport as support;

use std::process::Command;
use support::*;

/// Finding 10: `--settle 18446744073709551615` parsed and then panicked in
/// the settle wait (`Instant + Duration`), exit 101, which is "node
/// disabled", with the slot held. Now a usage error, before anything runs.
#[test]
fn huge_durations_are_usage_errors() {
    for (opt, value) in [
        ("--settle", "18446744073709551615"),
        ("--task-timeout", "18446744073709551615"),
        ("--wait-until-healthy", "315360001"),
        ("--session-ttl", "18446744073709551615"),
        ("--poll-ms", "18446744073709551615"),
    ] {
        let o = Command::new(rebootmgr_bin())
            .args(["run", "--node", "x", "--consul", "http://127.0.0.1:9"])
            .args([opt, value])
            .env("UMM_ROOT", "/nonexistent")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(110), "{opt}: {err}");
        assert!(err.contains(opt), "{opt}: {err}");
    }
    let o = Command::new(rebootmgr_bin())
        .args(["run", "--settle", "18446744073709551615"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("longest accepted"),
        "{o:?}"
    );
}

/// Finding 10: a panic (a bug) must never look like a documented exit code,
/// and a panic while the slot is held still runs the abort phase (the
/// post-boot tasks told REBOOTMGR_PHASE=abort) and releases the slot.
#[test]
fn a_panic_undoes_the_pre_boot_tasks_frees_the_slot_and_exits_70() {
    let a = Agent::start("panic", None);
    let c = a.client();
    let n = Node::new("panic", &a.addr());
    n.enable(None);
    let log = n.path("log");
    let l = log.display().to_string();
    n.task("pre", "10-prepare", &format!("echo pre >> {l}"));
    n.task(
        "post",
        "10-restore",
        &format!("echo \"post $REBOOTMGR_PHASE\" >> {l}"),
    );
    let out = n
        .command(&["run", "--settle", "0"])
        .env("REBOOTMGR_FAKE_PANIC", "after-pre-boot-tasks")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(70), "{err}");
    assert!(err.contains("internal error (a bug"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "pre\npost abort\n",
        "{err}"
    );
    assert!(holders(&c, "service/rebootmgr/lock").is_empty(), "{err}");
    assert!(markers(&c).is_empty());
    assert!(!in_maintenance(&c, "panic"));
    assert_eq!(n.reboots(), 0);

    // Finding 13: a closed stdout (`rebootmgr config ... | head -1` after
    // head exited) is not a panic: the change is made, exit 0.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = n
        .command(&["config", "--disable", "--message", "closed stdout"])
        .stdout(writer)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let cfg = c
        .kv_get("service/rebootmgr/nodes/panic/config")
        .unwrap()
        .unwrap();
    assert!(cfg.value_str().contains("closed stdout"), "{cfg:?}");
}

/// Finding 3: every task is checked before the first one runs (a refused
/// task found half-way left the node half prepared).
#[test]
fn every_task_is_checked_before_the_first_one_runs() {
    let a = Agent::start("taskcheck", None);
    let c = a.client();
    let n = Node::new("taskcheck", &a.addr());
    n.enable(None);
    let ran = n.path("ran");
    n.task("pre", "10-prepare", &format!("touch {}", ran.display()));
    let bad = n.task("pre", "20-writable", "true");
    std::fs::set_permissions(&bad, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let r = n.reboot(&[]);
    assert_eq!(r.code, 106, "{r:?}");
    assert!(r.stderr.contains("20-writable"), "{r:?}");
    assert!(
        !ran.exists(),
        "10-prepare ran although 20-writable is refused"
    );
    assert!(holders(&c, "service/rebootmgr/lock").is_empty());
    assert_eq!(n.reboots(), 0);
}
