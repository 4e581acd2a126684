//! umm's metrics (docs/metrics.md) as Debian's prometheus-node-exporter
//! serves them: the real exporter on 127.0.0.1 reads the textfile directory
//! of a fake root while the real `umm` binary records boots, enters and
//! leaves maintenance mode on it.

use std::path::Path;
use std::process::{Command, Output};
use umm_testsupport::prom::{self, sample, NodeExporter};
use umm_testsupport::{require_root, FakeRoot};

const DIR: &str = "/var/lib/prometheus/node-exporter";

fn umm(root: &FakeRoot, logs: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_umm"))
        .args(args)
        .env("UMM_ROOT", root.path())
        .env("UMM_FAKE_REBOOT", logs.join("reboot"))
        .env("UMM_FAKE_SYSTEMD", logs.join("systemd"))
        .env_remove("UMM_DECISION")
        .env_remove("SUDO_USER")
        .env_remove("SYSTEMD_PROC_CMDLINE")
        .output()
        .unwrap();
    assert!(out.status.success(), "umm {args:?}: {out:?}");
    out
}

/// What a reboot does to the fake root: a new boot id, an empty /run/umm.
fn reboot(root: &FakeRoot, boot: &str) {
    root.set_boot_id(boot);
    let _ = std::fs::remove_dir_all(root.p("/run/umm"));
}

fn check(ne: &NodeExporter, want: &[(&str, &str, f64)]) {
    prom::check(&ne.scrape(), want);
}

#[test]
fn node_exporter_serves_umms_mode_reason_and_unclean_boots() {
    require_root();
    let root = FakeRoot::booted("boot-1", Some("root=/dev/sda1"));
    let logs = tempfile::tempdir().unwrap();
    let dir = root.mkdir(DIR);
    let ne = NodeExporter::start(&dir);

    // At boot.
    let before = umm_core::fsutil::now_unix();
    umm(&root, logs.path(), &["boot", "record"]);
    let text = ne.scrape();
    assert!(
        text.contains("# TYPE umm_maintenance_mode gauge") && text.contains("# HELP umm_mode "),
        "{text}"
    );
    check(
        &ne,
        &[
            ("umm_maintenance_mode", "reason=\"\"", 0.0),
            ("umm_mode", "mode=\"normal\"", 1.0),
            ("umm_mode", "mode=\"maintenance\"", 0.0),
            ("umm_enabled", "", 1.0),
            ("umm_unclean_boots", "", 0.0),
            ("umm_reboot_count", "", 2.0),
        ],
    );
    let t = sample(
        &ne.scrape(),
        "umm_last_transition_timestamp_seconds",
        "to=\"normal\"",
    )
    .unwrap();
    assert!(t >= before as f64, "{t} < {before}");

    // `umm on` (a state change): entering.
    umm(&root, logs.path(), &["on", "--no-reboot"]);
    check(
        &ne,
        &[
            ("umm_mode", "mode=\"entering\"", 1.0),
            ("umm_mode", "mode=\"normal\"", 0.0),
        ],
    );
    assert!(sample(
        &ne.scrape(),
        "umm_last_transition_timestamp_seconds",
        "to=\"entering\""
    )
    .is_some());

    // The next boot pauses in maintenance mode: the reason is a label.
    reboot(&root, "boot-2");
    umm(&root, logs.path(), &["boot", "record"]);
    check(
        &ne,
        &[
            ("umm_maintenance_mode", "reason=\"requested\"", 1.0),
            ("umm_mode", "mode=\"maintenance\"", 1.0),
        ],
    );

    // `umm off` resumes the boot.
    umm(&root, logs.path(), &["off"]);
    check(
        &ne,
        &[
            ("umm_maintenance_mode", "reason=\"\"", 0.0),
            ("umm_mode", "mode=\"resumed\"", 1.0),
        ],
    );

    // That boot never shut down cleanly: the next one counts it.
    reboot(&root, "boot-3");
    umm(&root, logs.path(), &["boot", "record"]);
    check(
        &ne,
        &[
            ("umm_unclean_boots", "", 1.0),
            ("umm_mode", "mode=\"normal\"", 1.0),
        ],
    );
    // A clean shutdown resets it.
    umm(&root, logs.path(), &["boot", "clean"]);
    check(&ne, &[("umm_unclean_boots", "", 0.0)]);

    // Another file (umm.toml's metrics_file); its directory missing: a
    // warning at boot, the boot step still succeeds.
    root.write(
        "/etc/umm/umm.toml",
        "metrics_file = \"/srv/prom/umm.prom\"\n",
    );
    reboot(&root, "boot-4");
    let out = umm(&root, logs.path(), &["boot", "record"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: metrics not written") && err.contains("/srv/prom/umm.prom"),
        "{err}"
    );
    assert!(!root.p("/srv/prom").exists());
    root.mkdir("/srv/prom");
    umm(&root, logs.path(), &["boot", "stable"]);
    let text = std::fs::read_to_string(root.p("/srv/prom/umm.prom")).unwrap();
    assert_eq!(sample(&text, "umm_mode", "mode=\"normal\""), Some(1.0));
    // "" turns the metrics off.
    root.write("/etc/umm/umm.toml", "metrics_file = \"\"\n");
    let out = umm(&root, logs.path(), &["boot", "record"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("metrics"));
}

/// On a node without node_exporter (the default file's directory missing)
/// the boot steps do not warn about it at every boot (an info message, which
/// a boot step's stderr does not show); the directory is not created.
#[test]
fn the_default_file_without_node_exporter_is_no_warning() {
    require_root();
    let root = FakeRoot::booted("boot-1", Some("root=/dev/sda1"));
    let logs = tempfile::tempdir().unwrap();
    let out = umm(&root, logs.path(), &["boot", "record"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("metrics"), "{err}");
    assert!(!root.p(DIR).exists());
}
