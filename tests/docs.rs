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
        let name = if *k == "coordination" {
            "[coordination]"
        } else {
            k
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
    assert_eq!(loaded.origins.len(), KEYS.len() - 1, "{:?}", loaded.origins);
}
