//! `rebootmgr run` (also what a bare `rebootmgr` does): reboot if needed and
//! allowed, or finish the post-boot phase. The flow itself is in flow.rs.

use crate::conf::FileConfig;
use crate::exit::{Abort, Exit};
use crate::flow::{self, Done, Reboot, Settings};
use crate::local;
use crate::metrics::{self, Outcome};
use crate::notify::{Event, Notifier, NotifyFlags};
use crate::stuck;
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
    /// With --check-triggers: a command whose exit 1 means "reboot needed"
    /// (e.g. /usr/bin/needs-restarting -r); absolute path, root-owned
    #[arg(long, num_args = 1.., allow_hyphen_values = true, value_name = "CMD")]
    trigger_command: Option<Vec<String>>,
    /// Do everything except markers, maintenance and the reboot (tasks get REBOOTMGR_DRY_RUN=1)
    #[arg(short = 'n', long, visible_alias = "dryrun")]
    dry_run: bool,
    /// Reboot although a stop flag applies (the Python tool's override)
    #[arg(short = 's', long)]
    ignore_stop_flag: bool,
    /// Reboot although the node's config says "enabled": false
    #[arg(short = 'l', long)]
    ignore_node_disabled: bool,
    /// Reboot although service checks fail or members are down (Consul's own quorum still counts)
    #[arg(long)]
    ignore_failed_checks: bool,
    /// Refuse to reboot on a day listed in /etc/rebootmgr/holidays (exit 11)
    #[arg(long)]
    check_holidays: bool,
    /// Group (overrides the node config's group)
    #[arg(long)]
    group: Option<String>,
    /// Wait after the pre-boot tasks before re-checking: seconds or a duration ("2min") [default: 130s, or rebootmgr.toml's settle]
    #[arg(long, value_parser = crate::conf::flag_duration, value_name = "DURATION")]
    settle: Option<Duration>,
    /// Nodes of the group allowed to reboot at once [default: 1, or rebootmgr.toml's max_parallel]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    max_parallel: Option<u32>,
    /// Consul session TTL: seconds or a duration, min 10s [default: 10min, or rebootmgr.toml's session_ttl]
    #[arg(long, value_parser = session_ttl, value_name = "DURATION")]
    session_ttl: Option<Duration>,
    /// Per-task timeout: seconds or a duration [default: 2h, or rebootmgr.toml's task_timeout]
    #[arg(long, value_parser = crate::conf::flag_duration, value_name = "DURATION")]
    task_timeout: Option<Duration>,
    /// After boot, wait up to this long for checks to pass: seconds or a duration
    #[arg(long, value_parser = crate::conf::flag_duration, value_name = "DURATION")]
    wait_until_healthy: Option<Duration>,
    /// Command that reboots [default: systemctl reboot]
    #[arg(long, num_args = 1.., allow_hyphen_values = true)]
    reboot_command: Option<Vec<String>>,
    /// How often stop flags are polled during waits and tasks, in ms
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(..=umm_core::duration::MAX_SECS))]
    poll_ms: u64,
    /// Reboot into umm's maintenance mode (`umm on`: a pending `umm on --
    /// COMMAND` job runs there); the post-boot phase waits for `umm off`
    #[arg(long)]
    into_maintenance: bool,
    /// After how long a slot held across a reboot is reported stuck: seconds or a duration [default: 30min, or rebootmgr.toml's stuck_after]
    #[arg(long, value_parser = crate::conf::flag_duration, value_name = "DURATION")]
    stuck_after: Option<Duration>,
    /// node_exporter textfile for the run's metrics ("" for none) [env: REBOOTMGR_METRICS_FILE]
    /// [default: /var/lib/prometheus/node-exporter/rebootmgr.prom]
    #[arg(long, value_name = "PATH")]
    metrics_file: Option<PathBuf>,
    /// POST a JSON notification (Slack/Mattermost `text`) here on reboot
    /// starting, back and healthy, task failed, slot stuck [env: REBOOTMGR_WEBHOOK_URL]
    #[arg(long, value_name = "URL")]
    webhook_url: Option<String>,
    /// Time limit of one webhook or Alertmanager request [env: REBOOTMGR_NOTIFY_TIMEOUT] [default: 5s]
    #[arg(long, value_parser = crate::conf::flag_duration, value_name = "DURATION")]
    notify_timeout: Option<Duration>,
    /// Fire the chat_escalation Consul event only for failed tasks (the Python tool's events)
    #[arg(long)]
    no_chat_escalation: bool,
    /// Hold an Alertmanager silence of this node's alerts while it holds its
    /// reboot slot (API v2, e.g. http://127.0.0.1:9093) [env: REBOOTMGR_ALERTMANAGER_URL]
    #[arg(long, value_name = "URL")]
    alertmanager_url: Option<String>,
    /// Label the silence matches [env: REBOOTMGR_SILENCE_LABEL] [default: node]
    #[arg(long, value_name = "LABEL")]
    silence_label: Option<String>,
    /// Value of that label [env: REBOOTMGR_SILENCE_VALUE] [default: the node name]
    #[arg(long, value_name = "VALUE")]
    silence_value: Option<String>,
    /// How long one renewal keeps the silence (renewed every third of it while
    /// the slot is held) [env: REBOOTMGR_SILENCE_LEASE] [default: 30min]
    #[arg(long, value_parser = crate::conf::flag_duration, value_name = "DURATION")]
    silence_lease: Option<Duration>,
}

/// `--session-ttl`: at least 10 s (Consul's minimum).
fn session_ttl(s: &str) -> Result<Duration, String> {
    let d = crate::conf::flag_duration(s)?;
    if d.as_secs() < 10 {
        return Err("at least 10s (Consul's minimum session TTL)".into());
    }
    Ok(d)
}

impl RunArgs {
    fn notify_flags(&self) -> NotifyFlags {
        NotifyFlags {
            webhook_url: self.webhook_url.clone(),
            timeout: self.notify_timeout.map(umm_core::duration::format),
            no_chat_escalation: self.no_chat_escalation,
            alertmanager_url: self.alertmanager_url.clone(),
            silence_label: self.silence_label.clone(),
            silence_value: self.silence_value.clone(),
            silence_lease: self.silence_lease.map(umm_core::duration::format),
        }
    }

    /// The built-in defaults, then the config files, then the flags.
    fn settings(self, node: &str, root: Root, file: &FileConfig, notify: Notifier) -> Settings {
        let mut s = Settings::new(node);
        file.apply_to(&mut s);
        s.notify = notify;
        s.root = root;
        if self.group.is_some() {
            s.group = self.group;
        }
        s.check_triggers = self.check_triggers;
        if self.trigger_command.is_some() {
            s.trigger_command = self.trigger_command;
        }
        s.dry_run = self.dry_run;
        s.ignore_stop_flag = self.ignore_stop_flag;
        s.ignore_node_disabled = self.ignore_node_disabled;
        s.ignore_failed_checks = self.ignore_failed_checks;
        s.check_holidays |= self.check_holidays;
        // The parsers bound all of these (at most umm's longest duration).
        s.settle = self.settle.unwrap_or(s.settle);
        s.max_parallel = self.max_parallel.unwrap_or(s.max_parallel);
        s.session_ttl = self.session_ttl.unwrap_or(s.session_ttl);
        s.task_timeout = self.task_timeout.unwrap_or(s.task_timeout);
        if self.wait_until_healthy.is_some() {
            s.wait_until_healthy = self.wait_until_healthy;
        }
        s.poll = Duration::from_millis(self.poll_ms.max(50));
        s.reboot = match (
            std::env::var_os("REBOOTMGR_REBOOT_RECORD"),
            self.reboot_command,
        ) {
            (Some(f), _) if !f.is_empty() => Reboot::Record(PathBuf::from(f)),
            (_, Some(cmd)) => Reboot::Command(cmd),
            _ if self.into_maintenance => Reboot::Command(vec!["umm".into(), "on".into()]),
            _ => s.reboot,
        };
        s
    }

    fn stuck_after(&self, file: &FileConfig) -> u64 {
        self.stuck_after
            .map(|d| d.as_secs())
            .unwrap_or_else(|| file.stuck_after())
    }
}

pub fn run(
    c: &Consul,
    node: Option<String>,
    a: RunArgs,
    file: &crate::conf::Loaded,
) -> Result<String, Abort> {
    let root = Root::from_env();
    let _instance = single_instance(&root)?;
    // flag > environment > file > built-in default
    let metrics_cfg = file
        .config
        .metrics
        .clone()
        .with_overrides(a.metrics_file.clone());
    let notify_cfg = file.config.notify.clone().with_overrides(a.notify_flags());
    let group = a
        .group
        .clone()
        .or_else(|| file.config.group.clone().filter(|g| !g.is_empty()));
    let mut node_name = None;
    let result = (|| {
        // Refused behind the instance lock, so the metrics record the 104
        // (the metrics and notify tables keep the earlier files' values).
        if !file.errors.is_empty() {
            return Err(Abort::new(
                Exit::NotConfigured,
                format!(
                    "rebootmgr.toml has errors (fix them; `rebootmgr check-config` checks the files): {}",
                    file.errors.join("; ")
                ),
            ));
        }
        let node = super::node_name(c, node)?;
        node_name = Some(node.clone());
        let notify = notify_cfg
            .notifier(&node)
            .map_err(|e| Abort::new(Exit::Usage, e))?;
        report_stuck(
            c,
            &node,
            group.as_deref(),
            a.stuck_after(&file.config),
            &notify,
        );
        // Paused in maintenance mode with the slot held: the silence too.
        landing_zone(c, &node, &root, group.as_deref()).inspect_err(|e| {
            if e.exit == Exit::InUmmMaintenance {
                notify.renew_silence();
            }
        })?;
        flow::run(
            c,
            &a.clone()
                .settings(&node, root.clone(), &file.config, notify),
        )
    })();
    let outcome = match &result {
        Ok(done) => Outcome::done(done_name(done)),
        Err(e) => Outcome::aborted(e),
    };
    let held = node_name.and_then(|n| slot_held(c, &n, group.as_deref()));
    metrics::write(&metrics_cfg, &root, &outcome, held);
    Ok(match result? {
        Done::NothingToDo(why) => format!("nothing to do: {why}"),
        Done::DryRun => "dry run: reboot allowed".to_string(),
        Done::RebootIssued => "reboot issued".to_string(),
        Done::PostBootFinished => "post-boot phase finished".to_string(),
    })
}

fn done_name(d: &Done) -> &'static str {
    match d {
        Done::NothingToDo(_) => "nothing_to_do",
        Done::DryRun => "dry_run",
        Done::RebootIssued => "reboot_issued",
        Done::PostBootFinished => "post_boot_finished",
    }
}

/// Whether this node's per-node reboot marker (its slot across a reboot)
/// is in Consul; None when Consul cannot say.
fn slot_held(c: &Consul, node: &str, group: Option<&str>) -> Option<bool> {
    let keys = umm_coord::protocol::node_keys(c, node, group).ok()?;
    c.kv_get(&keys.marker()).ok().map(|m| m.is_some())
}

/// Stuck slots of this node's group are reported before the flow runs (best
/// effort: a Consul error here is the flow's to report); a new stuck set is
/// also notified.
fn report_stuck(c: &Consul, node: &str, group: Option<&str>, stuck_after: u64, notify: &Notifier) {
    let res = umm_coord::protocol::node_keys(c, node, group).and_then(|keys| {
        let mine: Vec<stuck::Stuck> = stuck::gather(c, stuck_after)?
            .into_iter()
            .filter(|s| s.group == keys.group)
            .collect();
        if stuck::report(c, &mine)? {
            for s in &mine {
                notify.send(
                    c,
                    Event::SlotStuck,
                    &s.node,
                    s.group.as_deref(),
                    &s.describe(),
                );
            }
        }
        Ok(())
    });
    if let Err(e) = res {
        log::warn!("looking for stuck reboot slots: {e}");
    }
}

/// Maintenance mode as the landing zone: while this boot is paused in umm's
/// maintenance mode, a node with its reboot marker does not start its
/// post-boot phase (the slot stays held, Consul maintenance stays on); `umm
/// off` resumes the boot and the next run finishes it behind the health gate.
fn landing_zone(c: &Consul, node: &str, root: &Root, group: Option<&str>) -> Result<(), Abort> {
    let rt = umm_core::state::read_runtime(root);
    if !rt.recorded.is_some_and(|d| d.is_maintenance()) || rt.resumed {
        return Ok(());
    }
    let keys = umm_coord::protocol::node_keys(c, node, group)?;
    if c.kv_get(&keys.marker())?.is_none() {
        return Ok(());
    }
    Err(Abort::new(
        Exit::InUmmMaintenance,
        "this boot is in umm's maintenance mode: the post-boot phase waits for 'umm off' (the slot stays held)",
    ))
}

/// Holds `/run/rebootmgr.lock` (flock) for the life of the process.
fn single_instance(root: &Root) -> Result<fsutil::Lock, Abort> {
    let path = root.path(local::INSTANCE_LOCK);
    fsutil::lock_exclusive(&path, fsutil::Wait::No).map_err(|e| match e {
        fsutil::LockError::Busy => Abort::new(
            Exit::AlreadyRunning,
            format!("another rebootmgr holds {}", path.display()),
        ),
        // SAFETY: geteuid has no preconditions.
        fsutil::LockError::Io(e)
            if e.kind() == std::io::ErrorKind::PermissionDenied && unsafe { libc::geteuid() } != 0 =>
        {
            Abort::new(
                Exit::Error,
                format!(
                    "`rebootmgr run` needs root (it holds {}, runs the tasks and reboots the node): run it as root, e.g. with sudo",
                    path.display()
                ),
            )
        }
        fsutil::LockError::Io(e) => Abort::new(Exit::Error, format!("{}: {e}", path.display())),
        fsutil::LockError::Unsafe(m) => Abort::new(Exit::Error, m),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn a_slot_is_reported_stuck_after_1800_s_by_default() {
        let file = FileConfig::default();
        assert_eq!(Cli::parse_from(["rebootmgr"]).run.stuck_after(&file), 1800);
        let c = Cli::parse_from(["rebootmgr", "--stuck-after", "5"]);
        assert_eq!(c.run.stuck_after(&file), 5);
        let c = Cli::parse_from(["rebootmgr", "--stuck-after", "2min"]);
        assert_eq!(c.run.stuck_after(&file), 120);
    }

    #[test]
    fn flags_override_the_files() {
        let file = FileConfig {
            settle: Some(Duration::from_secs(5)),
            task_timeout: Some(Duration::from_secs(60)),
            group: Some("db".into()),
            ..Default::default()
        };
        let s = Cli::parse_from(["rebootmgr", "--settle", "7"])
            .run
            .settings("n1", Root::default(), &file, Notifier::default());
        assert_eq!(s.settle, Duration::from_secs(7));
        assert_eq!(s.task_timeout, Duration::from_secs(60));
        assert_eq!(s.group.as_deref(), Some("db"));
        let s = Cli::parse_from(["rebootmgr", "--group", "web", "--task-timeout", "1h"])
            .run
            .settings("n1", Root::default(), &file, Notifier::default());
        assert_eq!(s.group.as_deref(), Some("web"));
        assert_eq!(s.task_timeout, Duration::from_secs(3600));
        assert_eq!(s.settle, Duration::from_secs(5));
    }

    #[test]
    fn notify_flags_win_over_the_file_and_take_seconds_or_units() {
        let file = crate::notify::NotifyConfig {
            webhook_url: "http://127.0.0.1:1/file".into(),
            silence_lease: "1h".into(),
            timeout: "9s".into(),
            ..Default::default()
        };
        let a = Cli::parse_from([
            "rebootmgr",
            "--notify-timeout",
            "7",
            "--silence-lease",
            "2min",
            "--no-chat-escalation",
        ])
        .run;
        // Not the process environment: notify's own test sets it.
        let c = file.clone().with_overrides_from(a.notify_flags(), |_| None);
        assert_eq!(
            (c.timeout.as_str(), c.silence_lease.as_str()),
            ("7s", "2min")
        );
        assert_eq!(c.webhook_url, "http://127.0.0.1:1/file");
        assert!(!c.chat_escalation);
        assert!(c.check().is_ok());
        let c = file
            .clone()
            .with_overrides_from(Cli::parse_from(["rebootmgr"]).run.notify_flags(), |_| None);
        assert_eq!(c, file);
        assert!(Cli::try_parse_from(["rebootmgr", "--notify-timeout", "5x"]).is_err());
    }
}
