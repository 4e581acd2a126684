//! `rebootmgr run` (also what a bare `rebootmgr` does): reboot if needed and
//! allowed, or finish the post-boot phase. The flow itself is in flow.rs.

use crate::exit::{Abort, Exit};
use crate::flow::{self, Done, Reboot, Settings};
use crate::local;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;
use umm_coord::consul::Consul;
use umm_core::fsutil;
use umm_core::paths::Root;

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Reboot only when a trigger asks for it (timer mode)
    #[arg(long)]
    check_triggers: bool,
    /// Do everything except markers, maintenance and the reboot
    #[arg(long)]
    dry_run: bool,
    /// Group (overrides the node config's group)
    #[arg(long)]
    group: Option<String>,
    /// Seconds to wait after the pre-boot tasks before re-checking
    #[arg(long, default_value_t = 130)]
    settle: u64,
    /// Nodes of the group allowed to reboot at once
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    max_parallel: u32,
    /// Consul session TTL in seconds (min 10)
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(10..))]
    session_ttl: u64,
    /// Per-task timeout in seconds
    #[arg(long, default_value_t = 7200)]
    task_timeout: u64,
    /// After boot, wait up to this many seconds for checks to pass
    #[arg(long)]
    wait_until_healthy: Option<u64>,
    /// Command that reboots [default: systemctl reboot]
    #[arg(long, num_args = 1.., allow_hyphen_values = true)]
    reboot_command: Option<Vec<String>>,
    /// How often stop flags are polled during waits and tasks, in ms
    #[arg(long, default_value_t = 1000)]
    poll_ms: u64,
}

impl RunArgs {
    fn settings(self, node: &str, root: Root) -> Settings {
        let mut s = Settings::new(node);
        s.root = root;
        s.group = self.group;
        s.check_triggers = self.check_triggers;
        s.dry_run = self.dry_run;
        s.settle = Duration::from_secs(self.settle);
        s.max_parallel = self.max_parallel;
        s.session_ttl = Duration::from_secs(self.session_ttl);
        s.task_timeout = Duration::from_secs(self.task_timeout);
        s.wait_until_healthy = self.wait_until_healthy.map(Duration::from_secs);
        s.poll = Duration::from_millis(self.poll_ms.max(50));
        s.reboot = match (
            std::env::var_os("REBOOTMGR_REBOOT_RECORD"),
            self.reboot_command,
        ) {
            (Some(f), _) if !f.is_empty() => Reboot::Record(PathBuf::from(f)),
            (_, Some(cmd)) => Reboot::Command(cmd),
            _ => s.reboot,
        };
        s
    }
}

pub fn run(c: &Consul, node: Option<String>, a: RunArgs) -> Result<String, Abort> {
    let root = Root::from_env();
    let _instance = single_instance(&root)?;
    let node = super::node_name(c, node)?;
    Ok(match flow::run(c, &a.settings(&node, root))? {
        Done::NothingToDo(why) => format!("nothing to do: {why}"),
        Done::DryRun => "dry run: reboot allowed".to_string(),
        Done::RebootIssued => "reboot issued".to_string(),
        Done::PostBootFinished => "post-boot phase finished".to_string(),
    })
}

/// Holds `/run/rebootmgr.lock` (flock) for the life of the process.
fn single_instance(root: &Root) -> Result<fsutil::Lock, Abort> {
    let path = root.path(local::INSTANCE_LOCK);
    fsutil::lock_exclusive(&path, fsutil::Wait::No).map_err(|e| match e {
        fsutil::LockError::Busy => Abort::new(
            Exit::AlreadyRunning,
            format!("another rebootmgr holds {}", path.display()),
        ),
        fsutil::LockError::Io(e) => Abort::new(Exit::Error, format!("{}: {e}", path.display())),
        fsutil::LockError::Unsafe(m) => Abort::new(Exit::Error, m),
    })
}
