//! The Consul KV layout of reboot coordination (docs/rebootmgr.md). Every key
//! name is spelled here and nowhere else.
//!
//! The KV layout is the Python rebootmgr's, so a cluster can switch tools
//! without migrating keys; what that tool lacked (N per group, node stop flag,
//! a per-node marker that keeps a rebooting node's slot) is added beside it.

use crate::consul::{Consul, ConsulError};
use serde_json::{json, Value};

pub const PREFIX: &str = "service/rebootmgr";
pub const GLOBAL_STOP: &str = "service/rebootmgr/stop";
/// Tag that makes a service's checks count; the phase tags add services that
/// count only before or only after the reboot.
pub const TAG: &str = "rebootmgr";
pub const TAG_PREBOOT: &str = "rebootmgr_preboot";
pub const TAG_POSTBOOT: &str = "rebootmgr_postboot";

/// Key names. `group` is the node's group (from its config or `--group`).
#[derive(Debug, Clone)]
pub struct Keys {
    pub node: String,
    pub group: Option<String>,
}

impl Keys {
    pub fn new(node: &str, group: Option<&str>) -> Keys {
        Keys {
            node: node.to_string(),
            group: group.filter(|g| !g.is_empty()).map(str::to_string),
        }
    }
    fn grouped(&self, suffix: &str) -> String {
        match &self.group {
            Some(g) => format!("{PREFIX}/{g}_{suffix}"),
            None => format!("{PREFIX}/{suffix}"),
        }
    }
    pub fn group_stop(&self) -> Option<String> {
        self.group.as_ref().map(|g| format!("{PREFIX}/{g}_stop"))
    }
    pub fn node_stop(&self) -> String {
        node_key(&self.node, "stop")
    }
    pub fn config(&self) -> String {
        node_key(&self.node, "config")
    }
    pub fn reboot_required(&self) -> String {
        node_key(&self.node, "reboot_required")
    }
    /// Per-node marker (JSON [`Marker`]); holds the node's slot while it reboots.
    pub fn marker(&self) -> String {
        node_key(&self.node, "reboot_in_progress")
    }
    /// The Python tool's marker: the node's name.
    pub fn shared_marker(&self) -> String {
        self.grouped("reboot_in_progress")
    }
    /// Semaphore prefix; the semaphore itself is `<prefix>/.lock`.
    pub fn lock_prefix(&self) -> String {
        self.grouped("lock")
    }
    /// Every stop flag that applies to this node, most general first.
    pub fn stop_flags(&self) -> Vec<String> {
        let mut v = vec![GLOBAL_STOP.to_string()];
        v.extend(self.group_stop());
        v.push(self.node_stop());
        v
    }
}

pub fn node_key(node: &str, leaf: &str) -> String {
    format!("{PREFIX}/nodes/{node}/{leaf}")
}

/// `service/rebootmgr/nodes/<node>/config`: `{"enabled":bool,"message":str,"group":str}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeConfig {
    pub enabled: bool,
    pub message: String,
    pub group: Option<String>,
    /// Other fields, kept when rewriting.
    pub extra: serde_json::Map<String, Value>,
}

impl NodeConfig {
    pub fn parse(text: &str) -> Result<NodeConfig, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let Value::Object(mut map) = v else {
            return Err("not a JSON object".into());
        };
        // Like the Python tool: only an explicit "enabled": true enables; its
        // documented {"disabled": true} disables.
        let enabled = map
            .remove("enabled")
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
            && !map
                .get("disabled")
                .and_then(Value::as_bool)
                .unwrap_or(false);
        let message = map
            .remove("message")
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let group = map
            .remove("group")
            .and_then(|v| v.as_str().map(str::to_string))
            .filter(|g| !g.is_empty());
        Ok(NodeConfig {
            enabled,
            message,
            group,
            extra: map,
        })
    }

    pub fn to_json(&self) -> String {
        let mut map = self.extra.clone();
        map.remove("disabled");
        map.insert("enabled".into(), json!(self.enabled));
        map.insert("message".into(), json!(self.message));
        if let Some(g) = &self.group {
            map.insert("group".into(), json!(g));
        }
        Value::Object(map).to_string()
    }
}

/// Reads the node's config: `Ok(None)` when absent, `Err` text when unreadable.
pub fn read_node_config(
    c: &Consul,
    node: &str,
) -> Result<Option<Result<NodeConfig, String>>, ConsulError> {
    Ok(c.kv_get(&node_key(node, "config"))?
        .map(|e| NodeConfig::parse(&e.value_str())))
}

/// Who holds a per-node marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkerOwner {
    Rebootmgr,
    Umm,
}

/// Value of the per-node marker key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub owner: MarkerOwner,
    /// Boot id when the reboot was issued (detects "did not really reboot").
    pub boot_id: Option<String>,
    pub since: u64,
    pub group: Option<String>,
}

impl Marker {
    pub fn to_json(&self) -> String {
        json!({
            "owner": match self.owner { MarkerOwner::Rebootmgr => "rebootmgr", MarkerOwner::Umm => "umm" },
            "boot_id": self.boot_id,
            "since": self.since,
            "group": self.group,
        })
        .to_string()
    }

    /// Lenient: an unreadable marker still means "this node is in a reboot".
    pub fn parse(text: &str) -> Marker {
        let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        Marker {
            owner: if v.get("owner").and_then(Value::as_str) == Some("umm") {
                MarkerOwner::Umm
            } else {
                MarkerOwner::Rebootmgr
            },
            boot_id: v.get("boot_id").and_then(Value::as_str).map(str::to_string),
            since: v.get("since").and_then(Value::as_u64).unwrap_or(0),
            group: v.get("group").and_then(Value::as_str).map(str::to_string),
        }
    }
}

/// Deletes `node`'s reboot markers: its own per-node marker, and the shared
/// (Python tool's) marker when that names `node`. Both are tried; the first
/// error is returned.
pub fn delete_reboot_markers(c: &Consul, keys: &Keys, node: &str) -> Result<(), ConsulError> {
    let own = c.kv_delete(&keys.marker());
    let shared = match c.kv_get(&keys.shared_marker()) {
        Ok(Some(e)) if e.value_str().trim() == node => c
            .kv_delete_cas(&keys.shared_marker(), e.modify_index)
            .map(|_| ()),
        Ok(_) => Ok(()),
        Err(e) => Err(e),
    };
    own.and(shared)
}

/// The first stop flag that is set, as (key, reason).
pub fn stop_flag_set(c: &Consul, keys: &Keys) -> Result<Option<(String, String)>, ConsulError> {
    for k in keys.stop_flags() {
        if let Some(e) = c.kv_get(&k)? {
            return Ok(Some((k, e.value_str())));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_layout_matches_the_python_tool() {
        let k = Keys::new("n1", None);
        assert_eq!(k.shared_marker(), "service/rebootmgr/reboot_in_progress");
        assert_eq!(k.lock_prefix(), "service/rebootmgr/lock");
        assert_eq!(k.config(), "service/rebootmgr/nodes/n1/config");
        assert_eq!(
            k.reboot_required(),
            "service/rebootmgr/nodes/n1/reboot_required"
        );
        assert_eq!(
            k.stop_flags(),
            vec!["service/rebootmgr/stop", "service/rebootmgr/nodes/n1/stop"]
        );
        let g = Keys::new("n1", Some("compute"));
        assert_eq!(g.group_stop().unwrap(), "service/rebootmgr/compute_stop");
        assert_eq!(
            g.shared_marker(),
            "service/rebootmgr/compute_reboot_in_progress"
        );
        assert_eq!(g.lock_prefix(), "service/rebootmgr/compute_lock");
    }

    #[test]
    fn node_config_defaults_to_disabled_and_keeps_unknown_fields() {
        assert!(!NodeConfig::parse("{}").unwrap().enabled);
        assert!(NodeConfig::parse(r#"{"enabled":true}"#).unwrap().enabled);
        assert!(
            !NodeConfig::parse(r#"{"enabled":true,"disabled":true}"#)
                .unwrap()
                .enabled
        );
        assert!(NodeConfig::parse("[1]").is_err());
        assert!(NodeConfig::parse("nope").is_err());
        let c = NodeConfig::parse(r#"{"enabled":false,"message":"m","group":"g","x":1}"#).unwrap();
        assert_eq!(c.group.as_deref(), Some("g"));
        let again = NodeConfig::parse(&c.to_json()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn marker_round_trips_and_tolerates_garbage() {
        let m = Marker {
            owner: MarkerOwner::Umm,
            boot_id: Some("b".into()),
            since: 5,
            group: None,
        };
        assert_eq!(Marker::parse(&m.to_json()), m);
        assert_eq!(Marker::parse("n1").owner, MarkerOwner::Rebootmgr);
    }
}
