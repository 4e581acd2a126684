//! `rebootmgr stop` and `rebootmgr unstop`: set or clear a stop flag.

use crate::exit::{Abort, Exit};
use clap::Args;
use umm_coord::consul::Consul;
use umm_coord::protocol::{Keys, GLOBAL_STOP};

#[derive(Args, Debug)]
pub struct StopArgs {
    /// The flag of group G only (service/rebootmgr/G_stop)
    #[arg(long, conflicts_with = "node_flag")]
    group: Option<String>,
    /// The flag of this node (--node) only
    #[arg(long)]
    node_flag: bool,
    /// Reason, stored as the flag's value
    reason: Vec<String>,
}

#[derive(Args, Debug)]
pub struct UnstopArgs {
    /// The flag of group G only (service/rebootmgr/G_stop)
    #[arg(long, conflicts_with = "node_flag")]
    group: Option<String>,
    /// The flag of this node (--node) only
    #[arg(long)]
    node_flag: bool,
}

pub fn run(c: &Consul, node: Option<String>, a: StopArgs) -> Result<String, Abort> {
    let key = flag_key(c, node, a.group, a.node_flag)?;
    let reason = if a.reason.is_empty() {
        "stopped by an operator".to_string()
    } else {
        a.reason.join(" ")
    };
    c.kv_put(&key, &reason)?;
    Ok(format!("set {key}"))
}

pub fn run_unstop(c: &Consul, node: Option<String>, a: UnstopArgs) -> Result<String, Abort> {
    let key = flag_key(c, node, a.group, a.node_flag)?;
    c.kv_delete(&key)?;
    Ok(format!("cleared {key}"))
}

/// The flag: this node's (`--node-flag`), a group's (`--group`), else global.
fn flag_key(
    c: &Consul,
    node: Option<String>,
    group: Option<String>,
    node_flag: bool,
) -> Result<String, Abort> {
    Ok(if node_flag {
        Keys::new(&super::node_name(c, node)?, None).node_stop()
    } else if let Some(g) = group {
        Keys::new("", Some(&g))
            .group_stop()
            .ok_or_else(|| Abort::new(Exit::Usage, "empty group name"))?
    } else {
        GLOBAL_STOP.to_string()
    })
}
