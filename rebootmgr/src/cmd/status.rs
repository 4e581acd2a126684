//! `rebootmgr status`.

use crate::exit::Abort;
use crate::{status, trigger};
use clap::Args;
use umm_coord::consul::Consul;
use umm_coord::protocol::Keys;
use umm_core::paths::Root;

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[arg(long)]
    json: bool,
}

pub fn run(c: &Consul, node: Option<String>, a: StatusArgs) -> Result<String, Abort> {
    let node = super::node_name(c, node)?;
    // The trigger key is per node: the group does not matter for it.
    let trig = trigger::reboot_required(c, &Root::from_env(), &Keys::new(&node, None))?
        .map(|t| t.describe_short());
    let v = status::gather(c, &node, trig)?;
    Ok(if a.json {
        serde_json::to_string_pretty(&v).unwrap_or_default()
    } else {
        status::render_text(&v).trim_end().to_string()
    })
}
