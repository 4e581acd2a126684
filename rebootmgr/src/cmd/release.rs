//! `rebootmgr release --node NAME`: the operator override for a node that went
//! down for its reboot and will not come back.

use crate::exit::{Abort, Exit};
use clap::Args;
use umm_coord::consul::Consul;
use umm_coord::lock::Semaphore;
use umm_coord::protocol;

#[derive(Args, Debug)]
pub struct ReleaseArgs {
    /// Group of the node's slot [default: the group in its config]
    #[arg(long)]
    group: Option<String>,
}

pub fn run(c: &Consul, node: Option<String>, a: ReleaseArgs) -> Result<String, Abort> {
    let node = node
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Abort::new(Exit::Usage, "release needs --node NAME"))?;
    let keys = protocol::node_keys(c, &node, a.group.as_deref())?;
    protocol::delete_markers(c, &keys)?;
    // The limit only matters when taking a slot.
    Semaphore::for_keys(&keys, 1).release(c, &node)?;
    Ok(format!(
        "released the slot of {node} in {} and its reboot markers",
        keys.lock_prefix()
    ))
}
