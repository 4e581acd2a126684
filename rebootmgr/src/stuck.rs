//! Stuck reboot slots: a node that wrote its reboot marker (it holds its
//! group's slot across the reboot) and has not finished its post-boot phase
//! after a deadline: it never came back, or its reboot command "succeeded"
//! without rebooting. The slot stays held (fail-stop: nobody else reboots);
//! what this module adds is that it is *reported*:
//!
//! - every `rebootmgr run` looks first and, while a slot of its group is
//!   stuck, keeps a critical check `rebootmgr-stuck` on its own Consul agent
//!   (the only check of a service of that name, so the health gate, which
//!   counts services tagged `rebootmgr`, does not see it: the stuck node must
//!   still be able to finish) that names the node, its group and since when;
//!   it is deregistered by the first run that finds nothing stuck (after
//!   `rebootmgr --node N release`, or the node finished after all);
//! - when the stuck set changes, a Consul user event `rebootmgr-stuck` is
//!   fired (payload: the JSON list), for `consul watch -type event`;
//! - `rebootmgr status` lists them (`stuck` in `--json`).
//!
//! Only rebootmgr's own markers count: a node that umm holds in maintenance
//! is there on purpose and is shown as such by `status`.

use serde_json::{json, Value};
use umm_coord::consul::{Consul, ConsulError, KvEntry};
use umm_coord::protocol::{listing, Marker, MarkerOwner, PREFIX};
use umm_core::fsutil::{format_time, now_unix};

pub const CHECK_ID: &str = "rebootmgr-stuck";
pub const EVENT: &str = "rebootmgr-stuck";
/// Default deadline (`--stuck-after`): twice the reboot grace of the
/// post-boot phase (15 min), so a slow boot is not reported.
pub const DEFAULT_AFTER_SECS: u64 = 1800;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stuck {
    pub node: String,
    pub group: Option<String>,
    pub since: u64,
    pub for_secs: u64,
}

impl Stuck {
    pub fn describe(&self) -> String {
        format!(
            "{} has held the reboot slot of group {} since {} ({} s): its reboot did not finish; \
             once the node is known to be down or repaired, `rebootmgr --node {} release` frees the slot",
            self.node,
            self.group.as_deref().unwrap_or("(none)"),
            format_time(self.since),
            self.for_secs,
            self.node
        )
    }

    pub fn to_json(&self) -> Value {
        json!({"node": self.node, "group": self.group, "since": self.since,
               "since_utc": format_time(self.since), "for_secs": self.for_secs})
    }
}

/// rebootmgr's per-node markers older than `after` seconds at `now`.
pub fn find(all: &[KvEntry], now: u64, after: u64) -> Vec<Stuck> {
    all.iter()
        .filter_map(|e| {
            let node = listing::marker_node(&e.key)?;
            let m = Marker::parse(&e.value_str());
            let age = now.saturating_sub(m.since);
            (m.owner == MarkerOwner::Rebootmgr && age >= after).then(|| Stuck {
                node: node.to_string(),
                group: m.group,
                since: m.since,
                for_secs: age,
            })
        })
        .collect()
}

/// The stuck slots as the cluster's KV says now.
pub fn gather(c: &Consul, after: u64) -> Result<Vec<Stuck>, ConsulError> {
    Ok(find(&c.kv_list(&format!("{PREFIX}/"))?, now_unix(), after))
}

/// The check's output: stable while the stuck set is the same (no ages in
/// it), so a change of output is a change of the set.
fn check_output(stuck: &[Stuck]) -> String {
    stuck
        .iter()
        .map(|s| {
            format!(
                "stuck: {} holds the reboot slot of group {} since {}; `rebootmgr --node {} release` frees it",
                s.node,
                s.group.as_deref().unwrap_or("(none)"),
                format_time(s.since),
                s.node
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reports (or clears) stuck slots through the local agent: see the module
/// doc. True when a new stuck set was reported (the caller notifies).
pub fn report(c: &Consul, stuck: &[Stuck]) -> Result<bool, ConsulError> {
    let current = c.agent_check_output(CHECK_ID)?;
    if stuck.is_empty() {
        if current.is_some() {
            c.agent_alarm_clear(CHECK_ID)?;
            log::warn!("no reboot slot is stuck any more: check {CHECK_ID} removed");
        }
        return Ok(false);
    }
    for s in stuck {
        log::error!("{}", s.describe());
    }
    let output = check_output(stuck);
    if current.as_deref() != Some(output.as_str()) {
        c.agent_alarm(CHECK_ID, "rebootmgr: a reboot slot is stuck", &output)?;
        let payload = Value::Array(stuck.iter().map(Stuck::to_json).collect()).to_string();
        c.event_fire(EVENT, &payload)?;
        return Ok(true);
    }
    Ok(false)
}

/// Words in umm's maintenance reason for a reboot loop (umm's
/// `cli::coord::sync`).
pub const REBOOT_LOOP_WORDS: &str = "after a reboot loop";

/// The Consul node maintenance of every node with a reboot marker (from the
/// status JSON's `in_progress`): `{"node","reason","after_reboot_loop"}`.
pub fn maintenance(c: &Consul, status: &Value) -> Result<Vec<Value>, ConsulError> {
    let mut out = Vec::new();
    let nodes = status["in_progress"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for n in nodes.iter().filter(|p| p.get("key").is_none()) {
        let Some(node) = n["node"].as_str() else {
            continue;
        };
        if let Some(reason) = c.node_maintenance_reason(node)? {
            out.push(
                json!({"node": node, "after_reboot_loop": reason.contains(REBOOT_LOOP_WORDS),
                            "reason": reason}),
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, value: &str) -> KvEntry {
        KvEntry {
            key: key.into(),
            value: value.as_bytes().to_vec(),
            modify_index: 1,
            session: None,
        }
    }

    #[test]
    fn only_rebootmgr_markers_past_the_deadline_are_stuck() {
        let all = vec![
            entry(
                "service/rebootmgr/nodes/a/reboot_in_progress",
                r#"{"owner":"rebootmgr","since":1000,"group":"g"}"#,
            ),
            entry(
                "service/rebootmgr/nodes/b/reboot_in_progress",
                r#"{"owner":"rebootmgr","since":2500}"#,
            ),
            entry(
                "service/rebootmgr/nodes/c/reboot_in_progress",
                r#"{"owner":"umm","since":0}"#,
            ),
            entry("service/rebootmgr/nodes/d/config", r#"{"enabled":true}"#),
        ];
        let s = find(&all, 3000, 1800);
        assert_eq!(
            s,
            vec![Stuck {
                node: "a".into(),
                group: Some("g".into()),
                since: 1000,
                for_secs: 2000
            }]
        );
        assert!(find(&all, 2799, 1800).is_empty());
        assert_eq!(find(&all, 4300, 1800).len(), 2);
        assert!(s[0].describe().contains("rebootmgr --node a release"));
    }

    #[test]
    fn the_check_output_does_not_change_with_age() {
        let mut s = Stuck {
            node: "a".into(),
            group: None,
            since: 0,
            for_secs: 5,
        };
        let o = check_output(std::slice::from_ref(&s));
        s.for_secs = 500;
        assert_eq!(check_output(&[s]), o);
        assert!(o.contains("1970-01-01 00:00:00 UTC"), "{o}");
    }
}
