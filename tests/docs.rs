//! Docs and behaviour agree: the defaults table in docs/configuration.md is
//! what the code uses, and every key the code knows is documented there.

use std::fs;
use umm_core::config::{self, Config, KEYS};
use umm_core::paths::Root;

fn doc(name: &str) -> String {
    fs::read_to_string(format!("{}/docs/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Rows of the "Keys" table: (key, default column).
fn key_rows() -> Vec<(String, String)> {
    doc("configuration.md")
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].trim_matches('`').to_string(), cells[3].to_string())
        })
        .collect()
}

#[test]
fn every_key_is_documented() {
    let rows = key_rows();
    for k in KEYS {
        let name = match *k {
            "coordination" => "[coordination]",
            "pacemaker" => "[pacemaker]",
            _ => k,
        };
        assert!(
            rows.iter().any(|(key, _)| key == name),
            "docs/configuration.md lacks '{name}'"
        );
    }
}

#[test]
fn documented_defaults_are_the_builtin_defaults() {
    let mut toml_text = String::new();
    for (key, default) in key_rows() {
        if key.starts_with('[') {
            assert_eq!(default, "absent");
            continue;
        }
        toml_text.push_str(&format!("{key} = {}\n", default.trim_matches('`')));
    }
    let root = umm_testsupport::FakeRoot::new();
    root.write("etc/umm/umm.toml", &toml_text);
    let loaded = config::load(&Root::new(root.path()));
    assert!(loaded.errors.is_empty(), "{:?}\n{toml_text}", loaded.errors);
    assert_eq!(loaded.config, Config::default(), "documented:\n{toml_text}");
    // And the file really set every key (so the comparison is not vacuous).
    // Less the two tables, documented as absent.
    assert_eq!(loaded.origins.len(), KEYS.len() - 2, "{:?}", loaded.origins);
}

/// The documented limits are the code's (issue 10): the longest duration,
/// the largest config file, rebootmgr's panic exit code.
#[test]
fn documented_limits_are_the_codes() {
    let conf = doc("configuration.md");
    let days = umm_core::duration::MAX_SECS / 86400;
    assert!(conf.contains(&format!("`\"{days}d\"`")), "max duration");
    assert_eq!(
        umm_core::duration::parse(&format!("{days}d")),
        Ok(umm_core::duration::MAX)
    );
    let mib = umm_core::fsutil::Policy::CONFIG.max_bytes >> 20;
    assert!(
        conf.contains(&format!("larger than {mib} MiB")),
        "config cap"
    );
    let rbm = doc("rebootmgr.md");
    assert!(rbm.contains("| 70 | internal error |"));
    assert!(rbm.contains(&umm_core::duration::MAX_SECS.to_string()));
    let sec = doc("security.md");
    for code in ["| 70 |", "UMM_TASK_PATH", "/dev/fd/N"] {
        assert!(sec.contains(code), "security.md lacks {code}");
    }
}

/// docs/pacemaker.md's keys table is `[pacemaker]`'s defaults: every key the
/// code reads is documented, and the documented defaults parse to the
/// built-in ones (as does an absent table).
#[test]
fn pacemaker_defaults_are_documented() {
    use umm::cli::pacemaker::PacemakerConfig;
    let text = doc("pacemaker.md");
    let mut toml_text = String::new();
    for l in text.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = l.split('|').map(str::trim).collect();
        toml_text.push_str(&format!(
            "{} = {}\n",
            cells[1].trim_matches('`'),
            cells[3].trim_matches('`')
        ));
    }
    let table: toml::Table = toml_text.parse().unwrap();
    assert_eq!(table.len(), 3, "{toml_text}");
    assert_eq!(
        PacemakerConfig::from_table(Some(&table)),
        Ok(PacemakerConfig::default()),
        "{toml_text}"
    );
    assert_eq!(
        PacemakerConfig::from_table(None),
        Ok(PacemakerConfig::default())
    );
    // The example block shows the same defaults.
    assert!(
        text.contains(&format!("[pacemaker]\n{toml_text}")),
        "the example differs:\n{toml_text}"
    );
}
