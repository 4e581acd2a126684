//! The vendor file dist/usr/lib/umm/umm.toml shows every key with its default, commented
//! out. This pins it to the built-in defaults (and so to the docs that quote
//! them): uncommenting the first example of each key changes nothing.

use std::collections::BTreeMap;
use std::fs;
use umm_core::config::{self, Config, KEYS};
use umm_core::paths::Root;

#[test]
fn vendor_file_matches_builtin_defaults() {
    let text = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dist/usr/lib/umm/umm.toml"
    ))
    .unwrap();
    let mut first: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix('#') {
            if let Some((k, _)) = rest.split_once(" = ") {
                if KEYS.contains(&k) && !first.contains_key(k) && !rest.contains("openvswitch") {
                    first.insert(k.to_string(), rest.to_string());
                }
            }
        }
    }
    for key in KEYS
        .iter()
        .filter(|k| !matches!(**k, "coordination" | "pacemaker"))
    {
        assert!(
            first.contains_key(*key),
            "dist/usr/lib/umm/umm.toml does not show '{key}'"
        );
    }
    let root = umm_testsupport::FakeRoot::new();
    let body: String = first.values().map(|l| format!("{l}\n")).collect();
    root.write("etc/umm/umm.toml", &body);
    let loaded = config::load(&Root::new(root.path()));
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert_eq!(
        loaded.config,
        Config::default(),
        "dist/usr/lib/umm/umm.toml:\n{body}"
    );
}
