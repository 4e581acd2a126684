//! The crate graph keeps the boot path small: the generator and umm-core must
//! never depend on D-Bus, HTTP, argument parsing or JSON crates, and neither
//! entry point may depend on the other (docs/design.md, "Crates and modules").

use std::process::Command;

/// The packages of this workspace that depend on `krate` (normal edges only).
fn dependents(krate: &str) -> String {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--workspace",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-i",
        ])
        .arg(krate)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree");
    assert!(
        out.status.success(),
        "cargo tree -i {krate}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn names(tree: &str) -> Vec<&str> {
    tree.lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect()
}

#[test]
fn the_boot_path_links_no_dbus_http_cli_or_json() {
    for heavy in ["zbus", "ureq", "clap", "serde_json"] {
        let tree = dependents(heavy);
        let who = names(&tree);
        assert!(!who.is_empty(), "{heavy} is not in the tree at all? {tree}");
        for boot in ["umm-core", "umm-generator"] {
            assert!(!who.contains(&boot), "{boot} depends on {heavy}:\n{tree}");
        }
    }
}

#[test]
fn entry_points_do_not_depend_on_each_other() {
    let users_of_rebootmgr = dependents("rebootmgr");
    assert_eq!(
        names(&users_of_rebootmgr),
        vec!["rebootmgr"],
        "{users_of_rebootmgr}"
    );
    let users_of_umm = dependents("umm");
    assert_eq!(names(&users_of_umm), vec!["umm"], "{users_of_umm}");
    let users_of_generator = dependents("umm-generator");
    assert_eq!(
        names(&users_of_generator),
        vec!["umm-generator"],
        "{users_of_generator}"
    );
}

#[test]
fn the_generator_depends_on_umm_core_alone() {
    let tree = dependents("umm-core");
    let who = names(&tree);
    for user in ["umm-generator", "umm-coord", "umm", "rebootmgr"] {
        assert!(who.contains(&user), "{user} should use umm-core:\n{tree}");
    }
    // umm-coord must not reach the generator's crate nor the reverse.
    let coord_users = dependents("umm-coord");
    assert!(
        !names(&coord_users).contains(&"umm-generator"),
        "{coord_users}"
    );
}
