//! `rebootmgr status`: the cluster's view from this node, read-only.

use crate::exit::Abort;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use umm_coord::consul::Consul;
use umm_coord::health;
use umm_coord::lock::LockState;
use umm_coord::protocol::{
    listing, read_node_config, read_whitelist, Keys, Marker, PREFIX, TAG, TAG_PREBOOT,
};

/// `status --json`'s schema (docs/rebootmgr-status-json.md): fields are only
/// ever added; removing one or changing its meaning or type bumps it.
pub const SCHEMA: u64 = 1;

/// What would block a reboot of `node` now, as the run sees it before the
/// reboot (the whitelist applied), structured.
fn blockers(c: &Consul, node: &str) -> Result<Vec<Value>, Abort> {
    let mut out: Vec<health::Blocker> = Vec::new();
    let whitelist = match read_whitelist(c)? {
        Ok(w) => w,
        Err(e) => {
            out.push(health::Blocker {
                kind: "whitelist",
                service: None,
                node: None,
                check: None,
                status: None,
                message: e,
            });
            Vec::new()
        }
    };
    out.extend(health::member_blockers(c, &whitelist)?);
    out.extend(
        health::check_quorum(c, node)?
            .into_iter()
            .map(|message| health::Blocker {
                kind: "consul_quorum",
                service: None,
                node: Some(node.to_string()),
                check: None,
                status: None,
                message,
            }),
    );
    out.extend(health::service_blockers(
        c,
        node,
        &[TAG, TAG_PREBOOT],
        &whitelist,
    )?);
    Ok(out
        .into_iter()
        .map(|b| {
            json!({
                "kind": b.kind,
                "service": b.service,
                "node": b.node,
                "check": b.check,
                "status": b.status,
                "message": b.message,
            })
        })
        .collect())
}

/// Gathers the status as JSON (the text form is rendered from it).
pub fn gather(c: &Consul, node: &str, trigger: Option<String>) -> Result<Value, Abort> {
    let all = c.kv_list(&format!("{PREFIX}/"))?;
    let config = read_node_config(c, node)?;
    let keys = Keys::choose(node, None, config.as_ref());
    let group = keys.group.clone();

    let stop_flags: Vec<Value> = all
        .iter()
        .filter(|e| listing::is_stop_flag(&e.key))
        .map(|e| json!({"key": e.key, "reason": e.value_str(), "applies_here": keys.stop_flags().contains(&e.key)}))
        .collect();
    let live: BTreeSet<String> = all.iter().filter_map(|e| e.session.clone()).collect();
    let markers: Vec<(String, Marker)> = all
        .iter()
        .filter_map(|e| {
            let n = listing::marker_node(&e.key)?;
            Some((n.to_string(), Marker::parse(&e.value_str())))
        })
        .collect();
    let locks: Vec<Value> = all
        .iter()
        .filter(|e| listing::is_semaphore(&e.key))
        .map(|e| {
            let st = LockState::parse(&e.value_str());
            let holders: Vec<Value> = st
                .holders
                .iter()
                .map(|(n, s)| {
                    json!({
                        "node": n,
                        "session": s,
                        "session_live": live.contains(s),
                        "rebooting": markers.iter().any(|(m, _)| m == n),
                    })
                })
                .collect();
            json!({"key": e.key, "limit": st.limit, "holders": holders, "mutex_session": e.session})
        })
        .collect();
    let in_progress: Vec<Value> = markers
        .iter()
        .map(|(n, m)| {
            json!({"node": n, "owner": format!("{:?}", m.owner).to_lowercase(), "since": m.since, "group": m.group})
        })
        .chain(
            all.iter()
                .filter(|e| listing::is_shared_marker(&e.key))
                .map(|e| json!({"key": e.key, "node": e.value_str()})),
        )
        .collect();
    let blockers = blockers(c, node)?;
    let services: Vec<String> = health::relevant_services(c, node, &[TAG, TAG_PREBOOT])?
        .into_keys()
        .collect();
    let cfg = match config {
        None => Value::Null,
        Some(Ok(c)) => json!({"enabled": c.enabled, "message": c.message, "group": c.group}),
        Some(Err(e)) => json!({"error": e}),
    };
    Ok(json!({
        "schema": SCHEMA,
        "consul": c.addr(),
        "node": node,
        "group": group,
        "config": cfg,
        "reboot_required": trigger,
        "stop_flags": stop_flags,
        "locks": locks,
        "in_progress": in_progress,
        "services": services,
        "blockers": blockers,
    }))
}

pub fn render_text(v: &Value) -> String {
    let s = |x: &Value| {
        x.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| x.to_string())
    };
    let mut out = String::new();
    out += &format!(
        "node:            {} (group {})\n",
        s(&v["node"]),
        s(&v["group"])
    );
    out += &format!("consul:          {}\n", s(&v["consul"]));
    out += &format!(
        "config:          {}\n",
        if v["config"].is_null() {
            "missing (reboots not allowed)".into()
        } else {
            v["config"].to_string()
        }
    );
    out += &format!(
        "reboot required: {}\n",
        if v["reboot_required"].is_null() {
            "no".into()
        } else {
            s(&v["reboot_required"])
        }
    );
    let empty = vec![];
    let flags = v["stop_flags"].as_array().unwrap_or(&empty);
    if flags.is_empty() {
        out += "stop flags:      none\n";
    }
    for f in flags {
        let here = if f["applies_here"].as_bool() == Some(true) {
            " (applies here)"
        } else {
            ""
        };
        out += &format!(
            "stop flag:       {} = {:?}{here}\n",
            s(&f["key"]),
            s(&f["reason"])
        );
    }
    for l in v["locks"].as_array().unwrap_or(&empty) {
        let holders: Vec<String> = l["holders"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .map(|h| {
                let mut t = s(&h["node"]);
                if h["rebooting"].as_bool() == Some(true) {
                    t += " (rebooting)";
                } else if h["session_live"].as_bool() != Some(true) {
                    t += " (session gone)";
                }
                t
            })
            .collect();
        out += &format!(
            "lock:            {} limit {}: {}\n",
            s(&l["key"]),
            l["limit"],
            if holders.is_empty() {
                "free".into()
            } else {
                holders.join(", ")
            }
        );
    }
    for p in v["in_progress"].as_array().unwrap_or(&empty) {
        let line = match p.get("key") {
            Some(k) => format!("{} (key {})", s(&p["node"]), s(k)),
            None => format!(
                "{} (owner {}, since unix time {})",
                s(&p["node"]),
                s(&p["owner"]),
                p["since"]
            ),
        };
        out += &format!("in progress:     {line}\n");
    }
    let services: Vec<String> = v["services"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(s)
        .collect();
    out += &format!(
        "services:        {}\n",
        if services.is_empty() {
            "none tagged rebootmgr".into()
        } else {
            services.join(", ")
        }
    );
    let blockers = v["blockers"].as_array().unwrap_or(&empty);
    if blockers.is_empty() {
        out += "blocking checks: none\n";
    }
    for b in blockers {
        out += &format!("blocking:        {}\n", s(&b["message"]));
    }
    out
}
