//! `rebootmgr config`: show or change this node's config key.

use crate::exit::{Abort, Exit};
use clap::Args;
use umm_coord::consul::Consul;
use umm_coord::protocol::{migrate_node_config, read_node_config, Keys, NodeConfig};

#[derive(Args, Debug)]
pub struct ConfigArgs {
    /// Allow reboots of this node ("enabled": true)
    #[arg(long, conflicts_with = "disable")]
    enable: bool,
    /// Forbid reboots of this node ("enabled": false; runs exit 101)
    #[arg(long)]
    disable: bool,
    /// The config's message (why it is disabled; printed with exit 101)
    #[arg(long)]
    message: Option<String>,
    /// Put the node in group G (its own stop flag, lock and marker keys)
    #[arg(long, conflicts_with = "no_group")]
    group: Option<String>,
    /// Take the node out of its group (the ungrouped keys)
    #[arg(long)]
    no_group: bool,
    /// Create an enabled config unless a valid one exists (one with "enabled"; other fields are kept)
    #[arg(long)]
    ensure: bool,
}

/// The message of a config `--ensure` creates (the Python tool's).
const DEFAULT_MESSAGE: &str = "Default config created";

impl ConfigArgs {
    /// Whether any field is to change (`--ensure` aside).
    fn edits(&self) -> bool {
        self.enable
            || self.disable
            || self.message.is_some()
            || self.group.is_some()
            || self.no_group
    }
}

pub fn run(c: &Consul, node: Option<String>, a: ConfigArgs) -> Result<String, Abort> {
    let node = super::node_name(c, node)?;
    let keys = Keys::new(&node, None);
    // The Python tool's old-style {"disabled": …} becomes {"enabled": …}.
    migrate_node_config(c, &node)?;
    let current = read_node_config(c, &node)?;
    // Like the Python tool, `--ensure` counts a config as valid only when it
    // says "enabled" (after the migration).
    let has_enabled = c.kv_get(&keys.config())?.is_some_and(|e| {
        serde_json::from_str::<serde_json::Value>(&e.value_str())
            .is_ok_and(|v| v.get("enabled").is_some())
    });
    let mut cfg = match (&current, a.ensure) {
        // `--ensure` alone leaves a valid config as it is; with an edit
        // (`--ensure --group G`) the edit is made.
        (Some(Ok(_)), true) if has_enabled && !a.edits() => {
            return Ok(format!("{} exists", keys.config()))
        }
        (Some(Ok(cfg)), _) if has_enabled => cfg.clone(),
        (Some(Ok(cfg)), false) => cfg.clone(),
        (Some(Ok(cfg)), true) => NodeConfig {
            enabled: true,
            message: DEFAULT_MESSAGE.into(),
            ..cfg.clone()
        },
        (_, true) => NodeConfig {
            enabled: true,
            message: DEFAULT_MESSAGE.into(),
            ..Default::default()
        },
        (None, false) => NodeConfig::default(),
        (Some(Err(e)), false) if !a.edits() => {
            return Err(Abort::new(
                Exit::NotConfigured,
                format!("{}: {e}", keys.config()),
            ))
        }
        (Some(Err(_)), false) => NodeConfig::default(),
    };
    if !(a.edits() || a.ensure) {
        return Ok(match current {
            Some(Ok(c)) => c.to_json(),
            _ => format!("{} is missing (reboots not allowed)", keys.config()),
        });
    }
    if a.enable {
        cfg.enabled = true;
    }
    if a.disable {
        cfg.enabled = false;
    }
    if let Some(m) = a.message {
        cfg.message = m;
    }
    if let Some(g) = a.group {
        cfg.group = Some(g).filter(|g| !g.is_empty());
    }
    if a.no_group {
        cfg.group = None;
    }
    c.kv_put(&keys.config(), &cfg.to_json())?;
    Ok(cfg.to_json())
}
