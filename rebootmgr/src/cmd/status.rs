//! `rebootmgr status`.

use crate::conf::FileConfig;
use crate::exit::Abort;
use crate::flow::Settings;
use crate::{status, stuck, trigger, window};
use clap::Args;
use umm_coord::consul::Consul;
use umm_coord::protocol::Keys;
use umm_core::paths::Root;

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Print JSON (schema in docs/rebootmgr-status-json.md)
    #[arg(long)]
    json: bool,
    /// Seconds after which a slot held across a reboot is shown as stuck
    #[arg(long, default_value_t = stuck::DEFAULT_AFTER_SECS)]
    stuck_after: u64,
}

pub fn run(
    c: &Consul,
    node: Option<String>,
    a: StatusArgs,
    file: &FileConfig,
) -> Result<String, Abort> {
    let node = super::node_name(c, node)?;
    // The trigger key is per node: the group does not matter for it.
    let trig = trigger::reboot_required(c, &Root::from_env(), &Keys::new(&node, None), None)?
        .map(|t| t.describe_short());
    let mut v = status::gather(c, &node, trig)?;
    let mut settings = Settings::new(&node);
    file.apply_to(&mut settings);
    settings.root = Root::from_env();
    let group = v["group"].as_str().map(str::to_string);
    v["window"] = window::status(c, &settings, &Keys::new(&node, group.as_deref()))?;
    let stuck = stuck::gather(c, a.stuck_after)?;
    let maint = stuck::maintenance(c, &v)?;
    Ok(if a.json {
        v["stuck"] = stuck.iter().map(stuck::Stuck::to_json).collect();
        v["maintenance"] = maint.clone().into();
        serde_json::to_string_pretty(&v).unwrap_or_default()
    } else {
        let mut text = status::render_text(&v).trim_end().to_string();
        text += &format!("\n{}", window::render_status(&v["window"]));
        for s in &stuck {
            text += &format!("\nstuck:           {}", s.describe());
        }
        for m in &maint {
            let lp = if m["after_reboot_loop"] == true {
                " (in maintenance after a reboot loop: an operator has to look)"
            } else {
                ""
            };
            text += &format!(
                "\nmaintenance:     {}{lp}: {}",
                m["node"].as_str().unwrap_or_default(),
                m["reason"].as_str().unwrap_or_default()
            );
        }
        text
    })
}
