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

// Leaf names under `service/rebootmgr/nodes/<node>/` and of the grouped keys.
const STOP: &str = "stop";
const CONFIG: &str = "config";
/// The per-node trigger key's leaf (`rebootmgr status` names it by this).
pub const REBOOT_REQUIRED: &str = "reboot_required";
const REBOOT_IN_PROGRESS: &str = "reboot_in_progress";
const LOCK: &str = "lock";
/// The semaphore's key below a lock prefix (`<prefix>/.lock`).
const SEMAPHORE: &str = ".lock";

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
    /// The keys of `node` in the group it coordinates in: `explicit` (a
    /// `--group`, umm's `[coordination] group`) wins, even when empty
    /// (ungrouped); else the group in the node's config; else ungrouped.
    /// The one place that chooses a node's group.
    pub fn choose(
        node: &str,
        explicit: Option<&str>,
        config: Option<&Result<NodeConfig, String>>,
    ) -> Keys {
        let from_config = || {
            config
                .and_then(|r| r.as_ref().ok())
                .and_then(|cfg| cfg.group.as_deref())
        };
        Keys::new(node, explicit.or_else(from_config))
    }
    fn grouped(&self, suffix: &str) -> String {
        match &self.group {
            Some(g) => format!("{PREFIX}/{g}_{suffix}"),
            None => format!("{PREFIX}/{suffix}"),
        }
    }
    pub fn group_stop(&self) -> Option<String> {
        self.group.as_ref().map(|g| format!("{PREFIX}/{g}_{STOP}"))
    }
    pub fn node_stop(&self) -> String {
        node_key(&self.node, STOP)
    }
    pub fn config(&self) -> String {
        node_key(&self.node, CONFIG)
    }
    pub fn reboot_required(&self) -> String {
        node_key(&self.node, REBOOT_REQUIRED)
    }
    /// Per-node marker (JSON [`Marker`]); holds the node's slot while it reboots.
    pub fn marker(&self) -> String {
        node_key(&self.node, REBOOT_IN_PROGRESS)
    }
    /// The Python tool's marker: the node's name.
    pub fn shared_marker(&self) -> String {
        self.grouped(REBOOT_IN_PROGRESS)
    }
    /// Semaphore prefix; the semaphore itself is [`semaphore_key`] of it.
    pub fn lock_prefix(&self) -> String {
        self.grouped(LOCK)
    }
    /// Every stop flag that applies to this node, most general first.
    pub fn stop_flags(&self) -> Vec<String> {
        let mut v = vec![GLOBAL_STOP.to_string()];
        v.extend(self.group_stop());
        v.push(self.node_stop());
        v
    }
}

fn node_key(node: &str, leaf: &str) -> String {
    format!("{PREFIX}/nodes/{node}/{leaf}")
}

/// The semaphore key of a lock prefix.
pub fn semaphore_key(lock_prefix: &str) -> String {
    format!("{lock_prefix}/{SEMAPHORE}")
}

/// Recognising keys in a listing of [`PREFIX`] (`rebootmgr status`).
pub mod listing {
    use super::*;

    /// A stop flag: global, a group's or a node's.
    pub fn is_stop_flag(key: &str) -> bool {
        key == GLOBAL_STOP
            || key.ends_with(&format!("_{STOP}"))
            || key.ends_with(&format!("/{STOP}"))
    }
    /// The node whose per-node marker this key is.
    pub fn marker_node(key: &str) -> Option<&str> {
        key.strip_prefix(&format!("{PREFIX}/nodes/"))?
            .strip_suffix(&format!("/{REBOOT_IN_PROGRESS}"))
    }
    /// A shared (Python tool's) marker, ungrouped or a group's.
    pub fn is_shared_marker(key: &str) -> bool {
        key.ends_with(REBOOT_IN_PROGRESS) && !key.starts_with(&format!("{PREFIX}/nodes/"))
    }
    /// A semaphore key (below any lock prefix).
    pub fn is_semaphore(key: &str) -> bool {
        key.ends_with(&format!("/{SEMAPHORE}"))
    }
}

/// `service/rebootmgr/nodes/<node>/config`: `{"enabled":bool,"message":str,"group":str}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeConfig {
    pub enabled: bool,
    pub message: String,
    pub group: Option<String>,
    /// Read from the old-style `{"disabled": bool}` without `enabled`:
    /// rewritten as `{"enabled": …}` by [`migrate_node_config`].
    pub migrated: bool,
    /// Other fields, kept when rewriting.
    pub extra: serde_json::Map<String, Value>,
}

impl NodeConfig {
    /// Strict about the fields that decide anything: `enabled` (and the old
    /// `disabled`) must be booleans, `group` a string; anything else is an
    /// error naming the key, never a silent "disabled" or "ungrouped".
    pub fn parse(text: &str) -> Result<NodeConfig, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let Value::Object(mut map) = v else {
            return Err("not a JSON object".into());
        };
        let boolean = |key: &str, v: &Value| {
            v.as_bool().ok_or_else(|| {
                format!("key \"{key}\" must be true or false, not {v} (fix it with `rebootmgr config --enable` or `--disable`)")
            })
        };
        let enabled = map
            .remove("enabled")
            .map(|v| boolean("enabled", &v))
            .transpose()?;
        let disabled = map
            .get("disabled")
            .map(|v| boolean("disabled", v))
            .transpose()?;
        // Like the Python tool: only "enabled": true enables; the old-style
        // {"disabled": false} without "enabled" means enabled and is migrated
        // to {"enabled": true} (flow: `migrate_node_config`). Both given: a
        // "disabled": true still disables (the safer reading).
        let (enabled, migrated) = match (enabled, disabled) {
            (Some(e), d) => (e && !d.unwrap_or(false), false),
            (None, Some(d)) => (!d, true),
            (None, None) => (false, false),
        };
        let message = match map.remove("message") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(m)) => m,
            Some(other) => other.to_string(),
        };
        let group = match map.remove("group") {
            None | Some(Value::Null) => None,
            Some(Value::String(g)) => Some(g).filter(|g| !g.is_empty()),
            Some(other) => {
                return Err(format!(
                    "key \"group\" must be a string (the group's name), not {other} (fix it with `rebootmgr config --group NAME` or `--no-group`)"
                ))
            }
        };
        Ok(NodeConfig {
            enabled,
            message,
            group,
            migrated,
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
    Ok(c.kv_get(&node_key(node, CONFIG))?
        .map(|e| NodeConfig::parse(&e.value_str())))
}

/// Rewrites an old-style `{"disabled": bool}` config (the Python tool's
/// migration) as `{"enabled": !disabled}`, other fields kept, by
/// check-and-set: an operator's concurrent change wins. `true` when rewritten.
pub fn migrate_node_config(c: &Consul, node: &str) -> Result<bool, ConsulError> {
    let Some(e) = c.kv_get(&node_key(node, CONFIG))? else {
        return Ok(false);
    };
    match NodeConfig::parse(&e.value_str()) {
        Ok(cfg) if cfg.migrated => c.kv_cas(&e.key, &cfg.to_json(), e.modify_index),
        _ => Ok(false),
    }
}

/// Sets `enabled: false` and `message` in the node's config, keeping its
/// other fields (the Python tool's reaction to a hanging task). A missing or
/// unreadable config is replaced by `{"enabled": false, "message": …}`.
pub fn disable_node(c: &Consul, node: &str, message: &str) -> Result<(), ConsulError> {
    for _ in 0..20 {
        let (mut cfg, index) = match c.kv_get(&node_key(node, CONFIG))? {
            Some(e) => (
                NodeConfig::parse(&e.value_str()).unwrap_or_default(),
                e.modify_index,
            ),
            None => (NodeConfig::default(), 0),
        };
        cfg.enabled = false;
        cfg.message = message.to_string();
        if c.kv_cas(&node_key(node, CONFIG), &cfg.to_json(), index)? {
            return Ok(());
        }
    }
    Err(ConsulError::Decode {
        what: format!("disable {}", node_key(node, CONFIG)),
        err: "too much contention (check-and-set kept failing)".into(),
    })
}

/// Where the Python tool's whitelist lives: a JSON list of node names whose
/// failing checks and failed membership are ignored.
pub const IGNORE_FAILED_CHECKS: &str = "service/rebootmgr/ignore_failed_checks";

/// Reads [`IGNORE_FAILED_CHECKS`]. Absent or empty: nobody. Anything but a
/// list of strings is an error naming the key (never "ignore nobody" nor
/// "ignore everybody" silently).
pub fn read_whitelist(c: &Consul) -> Result<Result<Vec<String>, String>, ConsulError> {
    let Some(e) = c.kv_get(IGNORE_FAILED_CHECKS)? else {
        return Ok(Ok(vec![]));
    };
    let text = e.value_str();
    if text.trim().is_empty() {
        return Ok(Ok(vec![]));
    }
    Ok(parse_whitelist(&text))
}

pub fn parse_whitelist(text: &str) -> Result<Vec<String>, String> {
    let bad = || {
        format!(
            "{IGNORE_FAILED_CHECKS} must be a JSON list of node names like [\"node1\"], not {text:?}"
        )
    };
    let v: Value = serde_json::from_str(text).map_err(|_| bad())?;
    v.as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|n| n.as_str().map(str::to_string).ok_or_else(bad))
        .collect()
}

/// [`Keys::choose`], reading the node's config only when no group is given.
pub fn node_keys(c: &Consul, node: &str, explicit: Option<&str>) -> Result<Keys, ConsulError> {
    Ok(match explicit {
        Some(_) => Keys::choose(node, explicit, None),
        None => Keys::choose(node, None, read_node_config(c, node)?.as_ref()),
    })
}

/// The node the shared (Python tool's) marker names, and its modify index.
pub fn shared_marker_node(c: &Consul, keys: &Keys) -> Result<Option<(String, u64)>, ConsulError> {
    Ok(c.kv_get(&keys.shared_marker())?
        .map(|e| (e.value_str().trim().to_string(), e.modify_index)))
}

/// Deletes the node's reboot markers: its per-node marker, and the shared
/// marker if it names this node. Tries both; the first error is returned.
pub fn delete_markers(c: &Consul, keys: &Keys) -> Result<(), ConsulError> {
    let own = c.kv_delete(&keys.marker());
    let shared = match shared_marker_node(c, keys) {
        Ok(Some((n, index))) if n == keys.node => {
            c.kv_delete_cas(&keys.shared_marker(), index).map(drop)
        }
        Ok(_) => Ok(()),
        Err(e) => Err(e),
    };
    own.and(shared)
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

    /// Found by the consul_node_config fuzz target: rewriting a node config
    /// (`rebootmgr config --enable`) changed an unknown numeric field the
    /// operator's tooling had put there (1.1111000111111111e32 came back as
    /// ...113e32), because serde_json's default float parsing is not
    /// correctly rounded. Unknown fields are documented as kept.
    #[test]
    fn unknown_numbers_survive_a_rewrite() {
        // The fuzzer's inputs: integers too large for u64 (read as f64).
        let text = r#"{"enabled":true,"message":"","group":"dwr","exmyd":[111110001111111100000000000000011,2,11111111111111111111111111111111111111111111111,111111111111111111111111,0.1,1e-7,-2.5e300]}"#;
        let once = NodeConfig::parse(text).unwrap();
        let twice = NodeConfig::parse(&once.to_json()).unwrap();
        assert_eq!(twice, once);
        assert_eq!(NodeConfig::parse(&twice.to_json()).unwrap(), once);
    }

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
    fn the_explicit_group_wins_then_the_node_config() {
        let cfg = |g: Option<&str>| {
            Ok(NodeConfig {
                group: g.map(str::to_string),
                ..Default::default()
            })
        };
        let (none, bad) = (None, Some(Err("not JSON".to_string())));
        let (g, other) = (Some(cfg(Some("cfg"))), Some(cfg(None)));
        for (explicit, config, want) in [
            (None, &none, None),
            (None, &bad, None),
            (None, &other, None),
            (None, &g, Some("cfg")),
            (Some("cli"), &g, Some("cli")),
            (Some("cli"), &none, Some("cli")),
            // An empty explicit group means ungrouped, not "from the config".
            (Some(""), &g, None),
        ] {
            let k = Keys::choose("n1", explicit, config.as_ref());
            assert_eq!(k.group.as_deref(), want, "{explicit:?} {config:?}");
            assert_eq!(k.node, "n1");
        }
    }

    #[test]
    fn listing_recognises_the_keys_it_writes() {
        let g = Keys::new("n1", Some("compute"));
        for k in g.stop_flags() {
            assert!(listing::is_stop_flag(&k), "{k}");
        }
        assert!(!listing::is_stop_flag(&g.config()));
        assert_eq!(listing::marker_node(&g.marker()), Some("n1"));
        assert_eq!(listing::marker_node(&g.shared_marker()), None);
        assert!(listing::is_shared_marker(&g.shared_marker()));
        assert!(listing::is_shared_marker(
            &Keys::new("n1", None).shared_marker()
        ));
        assert!(!listing::is_shared_marker(&g.marker()));
        assert!(listing::is_semaphore(&semaphore_key(&g.lock_prefix())));
        assert_eq!(
            semaphore_key(&g.lock_prefix()),
            "service/rebootmgr/compute_lock/.lock"
        );
        assert!(!listing::is_semaphore(&g.lock_prefix()));
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
        // The Python tool's old style: {"disabled": false} is enabled, and
        // marked for migration.
        let old = NodeConfig::parse(r#"{"disabled":false,"x":1}"#).unwrap();
        assert!(old.enabled && old.migrated);
        assert_eq!(
            serde_json::from_str::<Value>(&old.to_json()).unwrap(),
            json!({"enabled": true, "message": "", "x": 1})
        );
        let old = NodeConfig::parse(r#"{"disabled":true}"#).unwrap();
        assert!(!old.enabled && old.migrated);
        assert!(!NodeConfig::parse(r#"{"enabled":true}"#).unwrap().migrated);
        // Wrong types are errors naming the key.
        for (bad, key) in [
            (r#"{"enabled":"yes"}"#, "\"enabled\""),
            (r#"{"enabled":1}"#, "\"enabled\""),
            (r#"{"disabled":"no"}"#, "\"disabled\""),
            (r#"{"enabled":true,"group":7}"#, "\"group\""),
            (r#"{"enabled":true,"group":["a"]}"#, "\"group\""),
        ] {
            let e = NodeConfig::parse(bad).unwrap_err();
            assert!(e.contains(key), "{bad}: {e}");
        }
        assert_eq!(
            parse_whitelist(r#"["a","b"]"#).unwrap(),
            vec!["a".to_string(), "b".to_string()]
        );
        for bad in ["a", r#"{"a":1}"#, "[1]"] {
            assert!(
                parse_whitelist(bad)
                    .unwrap_err()
                    .contains(IGNORE_FAILED_CHECKS),
                "{bad}"
            );
        }
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
