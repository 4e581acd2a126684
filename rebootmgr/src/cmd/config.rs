//! `rebootmgr config`: show or change this node's config key.

use crate::exit::{Abort, Exit};
use clap::Args;
use umm_coord::consul::Consul;
use umm_coord::protocol::{read_node_config, Keys, NodeConfig};

#[derive(Args, Debug)]
pub struct ConfigArgs {
    #[arg(long, conflicts_with = "disable")]
    enable: bool,
    #[arg(long)]
    disable: bool,
    #[arg(long)]
    message: Option<String>,
    #[arg(long, conflicts_with = "no_group")]
    group: Option<String>,
    #[arg(long)]
    no_group: bool,
    /// Create an enabled config only if none exists
    #[arg(long)]
    ensure: bool,
}

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
    let current = read_node_config(c, &node)?;
    let mut cfg = match (&current, a.ensure) {
        (Some(Ok(_)), true) => return Ok(format!("{} exists", keys.config())),
        (Some(Ok(cfg)), false) => cfg.clone(),
        (_, true) => NodeConfig {
            enabled: true,
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
