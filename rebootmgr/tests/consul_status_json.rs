//! `rebootmgr status --json` against a real Consul: the schema number, the
//! structured blockers, and every field printed documented in
//! docs/rebootmgr-status-json.md.

use umm_testsupport as support;

use serde_json::{json, Value};
use support::*;

fn status(n: &Node) -> Value {
    let r = n.run(&["status", "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"))
}

/// Every field path in `v`, arrays as `[]` (all elements: they may differ).
fn walk(prefix: &str, v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let name = format!("{prefix}{k}");
                if !out.contains(&name) {
                    out.push(name.clone());
                }
                walk(&format!("{name}."), v, out);
            }
        }
        Value::Array(a) => {
            for e in a {
                walk(&format!("{}[].", prefix.trim_end_matches('.')), e, out);
            }
        }
        _ => {}
    }
}

#[test]
fn schema_blockers_and_every_field_documented() {
    let a = Agent::start("sjson", None);
    let c = a.client();
    // This node runs A (every instance must pass) and B (min_passing=3),
    // and C with a malformed tag. Another node's A fails, a third node's A
    // is in maintenance.
    catalog_service(&c, "me", "A", &["rebootmgr"], "passing");
    let n = Node::new("me", &a.addr());
    n.enable(Some("web"));
    c.catalog_register(&json!({
        "Node": "me", "Address": "127.0.0.2", "SkipNodeUpdate": true,
        "Service": {"ID": "B", "Service": "B", "Tags": ["rebootmgr", "min_passing=3"]},
    }))
    .unwrap();
    c.catalog_register(&json!({
        "Node": "me", "Address": "127.0.0.2", "SkipNodeUpdate": true,
        "Service": {"ID": "C", "Service": "C", "Tags": ["rebootmgr", "max_failing=x"]},
    }))
    .unwrap();
    catalog_service(&c, "other", "A", &["rebootmgr"], "critical");
    catalog_service(&c, "maint", "A", &["rebootmgr"], "passing");
    c.set_node_maintenance("maint", true, "operator").unwrap();
    c.kv_put("service/rebootmgr/web_stop", "window closed")
        .unwrap();
    c.kv_put("service/rebootmgr/reboot_in_progress", "py-node")
        .unwrap();
    // A node holding a slot of the group's lock (rebooting).
    let holder = Node::new("holder", &a.addr());
    holder.enable(Some("db"));
    assert_eq!(holder.reboot(&[]).code, 0);
    n.touch_trigger();

    let v = status(&n);
    assert_eq!(v["schema"], json!(1), "{v:#}");
    assert_eq!(v["group"], json!("web"));
    assert_eq!(
        v["reboot_required"],
        json!("file /var/run/reboot-required exists")
    );
    let blockers = v["blockers"].as_array().unwrap();
    let find = |kind: &str, node: Option<&str>| {
        blockers
            .iter()
            .find(|b| b["kind"] == kind && node.is_none_or(|n| b["node"] == n))
            .unwrap_or_else(|| panic!("no {kind} blocker for {node:?}: {v:#}"))
            .clone()
    };
    let other = find("check", Some("other"));
    assert_eq!(
        (&other["service"], &other["check"], &other["status"]),
        (&json!("A"), &json!("A-check"), &json!("critical")),
        "{other}"
    );
    assert!(other["message"]
        .as_str()
        .unwrap()
        .starts_with("service A: "));
    let maint = find("check", Some("maint"));
    assert_eq!(maint["check"], json!("_node_maintenance"), "{maint}");
    let min = find("min_passing", None);
    assert_eq!(min["service"], json!("B"), "{min}");
    assert_eq!(find("bad_tag", None)["service"], json!("C"));
    // The text form prints the same messages.
    let text = n.run(&["status"]);
    assert!(
        text.stdout.contains(&format!(
            "blocking:        {}",
            other["message"].as_str().unwrap()
        )),
        "{text:?}"
    );

    // The whitelist applies as in a run; a bad one is a blocker itself.
    c.kv_put("service/rebootmgr/ignore_failed_checks", r#"["other"]"#)
        .unwrap();
    let v = status(&n);
    assert!(
        !v["blockers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["node"] == "other"),
        "{v:#}"
    );
    c.kv_put("service/rebootmgr/ignore_failed_checks", "other")
        .unwrap();
    let v2 = status(&n);
    assert!(
        v2["blockers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["kind"] == "whitelist"),
        "{v2:#}"
    );

    let doc = std::fs::read_to_string(repo().join("docs/rebootmgr-status-json.md")).unwrap();
    assert!(doc.starts_with("# `rebootmgr status --json`: schema 1\n"));
    let mut keys = Vec::new();
    walk("", &v, &mut keys);
    walk("", &v2, &mut keys);
    for must in [
        "locks[].holders[].rebooting",
        "in_progress[].key",
        "in_progress[].owner",
        "stop_flags[].applies_here",
        "blockers[].check",
    ] {
        assert!(
            keys.contains(&must.to_string()),
            "{must} not printed: {keys:?}"
        );
    }
    for k in keys {
        assert!(
            doc.contains(&format!("| `{k}` |")),
            "docs/rebootmgr-status-json.md lacks `{k}`"
        );
    }
}
