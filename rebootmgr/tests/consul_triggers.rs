//! Every distribution's "reboot needed" signal, with the real binary and a
//! real Consul dev agent: SUSE's /run/reboot-needed and a sentinel command
//! (RHEL's `needs-restarting -r` convention: exit 1 = needed, 0 = not).

use umm_testsupport::*;

#[test]
fn suse_flag_file_and_sentinel_command() {
    let a = Agent::start("trig", None);
    let c = a.client();
    let n = Node::new("trig", &a.addr());
    n.enable(None);

    // Nothing asks: nothing to do, nothing taken.
    let r = n.reboot(&["--check-triggers"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("nothing to do"), "{r:?}");
    assert_eq!(n.reboots(), 0);

    // The programs live in the node's root (UMM_ROOT), where rebootmgr
    // checks them by the trust rule; it is given their paths there.
    // A sentinel that says "not needed" (exit 0), then "needed" (exit 1).
    let calls = n.path("sentinel-calls");
    n.root.script(
        "usr/bin/no-reboot",
        &format!("echo x >> {}\nexit 0", calls.display()),
    );
    let r = n.reboot(&[
        "--check-triggers",
        "--trigger-command",
        "/usr/bin/no-reboot",
        "-r",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("nothing to do"), "{r:?}");
    assert_eq!(
        std::fs::read_to_string(&calls).unwrap().lines().count(),
        1,
        "the sentinel ran"
    );
    assert_eq!(n.reboots(), 0);
    assert!(markers(&c).is_empty());

    // A sentinel that fails otherwise (exit 2): an operator must look, no reboot.
    n.root.script("usr/bin/broken", "exit 2");
    let r = n.reboot(&["--check-triggers", "--trigger-command", "/usr/bin/broken"]);
    assert_eq!(r.code, 100, "{r:?}");
    assert!(r.stderr.contains("expected exit 0"), "{r:?}");
    assert_eq!(n.reboots(), 0);
    assert!(holders(&c, "service/rebootmgr/lock").is_empty());

    n.root.script("usr/bin/needs-reboot", "exit 1");
    let r = n.reboot(&[
        "--check-triggers",
        "--trigger-command",
        "/usr/bin/needs-reboot",
        "-r",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("exited 1 (reboot needed)"), "{r:?}");
    assert_eq!(n.reboots(), 1);
    n.simulate_reboot("boot-2");
    let r = n.reboot(&["--check-triggers"]);
    assert_eq!(r.code, 0, "post-boot: {r:?}");
    assert!(!in_maintenance(&c, "trig"));

    // SUSE: /run/reboot-needed (zypper, transactional-update).
    std::fs::write(n.path("run/reboot-needed"), "").unwrap();
    let r = n.reboot(&["--check-triggers"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("/run/reboot-needed"), "{r:?}");
    assert_eq!(n.reboots(), 2);
}
