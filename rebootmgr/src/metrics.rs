//! rebootmgr's Prometheus metrics: the node_exporter textfile (default
//! `/var/lib/prometheus/node-exporter/rebootmgr.prom`, beside umm's
//! `umm.prom`: one file each, so the two never race), rewritten at the end of
//! every `rebootmgr run`. Never fatal: a missing directory or a failed write
//! is a warning. Names and meaning: docs/metrics.md.

use crate::exit::{Abort, Exit};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Mutex;
use umm_core::metrics::{self, Textfile, WriteError, Written};
use umm_core::paths::Root;

pub const DEFAULT_FILE: &str = "/var/lib/prometheus/node-exporter/rebootmgr.prom";
/// The environment variable that sets the file (`--metrics-file` wins).
pub const ENV_FILE: &str = "REBOOTMGR_METRICS_FILE";

/// The `[metrics]` table of rebootmgr's config file (and `--metrics-file`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// The textfile; empty: no metrics.
    pub file: PathBuf,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            file: PathBuf::from(DEFAULT_FILE),
        }
    }
}

impl MetricsConfig {
    /// `--metrics-file`, else `$REBOOTMGR_METRICS_FILE`, else `self`.
    pub fn with_overrides(mut self, flag: Option<PathBuf>) -> Self {
        if let Some(f) = flag.or_else(|| std::env::var_os(ENV_FILE).map(PathBuf::from)) {
            self.file = f;
        }
        self
    }
}

/// What the flow learnt during the run that its result does not say.
static REBOOT_REQUIRED: Mutex<Option<bool>> = Mutex::new(None);

/// The flow read the trigger (or the command line asked): `required`.
pub fn note_reboot_required(required: bool) {
    *REBOOT_REQUIRED.lock().unwrap_or_else(|p| p.into_inner()) = Some(required);
}

/// How a run ended, as the metrics show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `reboot_issued`, `post_boot_finished`, `nothing_to_do`, `dry_run`,
    /// or the exit code's name (`lock_busy`, `task_failed`, …).
    pub result: &'static str,
    pub exit_code: i32,
    /// The reason that held the reboot back (a refusal the timer retries,
    /// or an operator's stop or disable), if one did.
    pub blocked_by: Option<&'static str>,
}

impl Outcome {
    pub fn done(result: &'static str) -> Outcome {
        Outcome {
            result,
            exit_code: 0,
            blocked_by: None,
        }
    }

    pub fn aborted(a: &Abort) -> Outcome {
        let name = exit_name(a.exit);
        let blocked = matches!(
            a.exit,
            Exit::ChecksFailed
                | Exit::MemberNotAlive
                | Exit::LockBusy
                | Exit::LockLost
                | Exit::RebootPending
                | Exit::InUmmMaintenance
                | Exit::QuorumAtRisk
                | Exit::Holiday
                | Exit::OutsideWindow
                | Exit::NodeDisabled
                | Exit::StopFlag
        );
        Outcome {
            result: name,
            exit_code: a.exit.code(),
            blocked_by: blocked.then_some(name),
        }
    }
}

/// The exit code's name as docs/rebootmgr.md's table spells it, in snake case.
pub fn exit_name(e: Exit) -> &'static str {
    match e {
        Exit::Ok => "ok",
        Exit::Error => "error",
        Exit::ChecksFailed => "checks_failed",
        Exit::MemberNotAlive => "member_not_alive",
        Exit::LockBusy => "lock_busy",
        Exit::LockLost => "lock_lost",
        Exit::ConsulUnreachable => "consul_unreachable",
        Exit::AlreadyRunning => "already_running",
        Exit::RebootPending => "reboot_pending",
        Exit::InUmmMaintenance => "in_umm_maintenance",
        Exit::QuorumAtRisk => "quorum_at_risk",
        Exit::Holiday => "holiday",
        Exit::OutsideWindow => "outside_window",
        Exit::Internal => "internal_error",
        Exit::TaskFailed => "task_failed",
        Exit::NodeDisabled => "node_disabled",
        Exit::StopFlag => "stop_flag",
        Exit::DidNotReboot => "did_not_reboot",
        Exit::NotConfigured => "not_configured",
        Exit::TaskTimedOut => "task_timed_out",
        Exit::TaskRefused => "task_refused",
        Exit::RebootFailed => "reboot_failed",
        Exit::CleanupFailed => "cleanup_failed",
        Exit::ConsulRefused => "consul_refused",
        Exit::Usage => "usage",
    }
}

/// The run's metrics. `slot_held`: this node's per-node reboot marker is in
/// Consul after the run (None: Consul could not say).
pub fn render(o: &Outcome, slot_held: Option<bool>, now: u64) -> Textfile {
    let required = *REBOOT_REQUIRED.lock().unwrap_or_else(|p| p.into_inner());
    let required = match o.result {
        "post_boot_finished" => Some(false),
        _ => required.or(slot_held.filter(|h| *h)),
    };
    let mut t = Textfile::new();
    if let Some(r) = required {
        t.gauge(
            "rebootmgr_reboot_required",
            "1 when a trigger (or the command line) asked for a reboot that has not finished, as the last run saw it.",
        )
        .sample("rebootmgr_reboot_required", &[], f64::from(u8::from(r)));
    }
    if let Some(h) = slot_held {
        t.gauge(
            "rebootmgr_slot_held",
            "1 while this node holds its group's reboot slot across a reboot (its per-node marker is in Consul).",
        )
        .sample("rebootmgr_slot_held", &[], f64::from(u8::from(h)));
    }
    t.gauge(
        "rebootmgr_last_run_timestamp_seconds",
        "Unix time the last rebootmgr run ended.",
    )
    .sample("rebootmgr_last_run_timestamp_seconds", &[], now as f64)
    .gauge(
        "rebootmgr_last_run_exit_code",
        "Exit code of the last rebootmgr run (docs/rebootmgr.md, Exit codes).",
    )
    .sample("rebootmgr_last_run_exit_code", &[], f64::from(o.exit_code))
    .gauge(
        "rebootmgr_last_run_result",
        "Always 1; label result: how the last run ended (reboot_issued, post_boot_finished, nothing_to_do, dry_run, or the exit code's name).",
    )
    .sample("rebootmgr_last_run_result", &[("result", o.result)], 1.0)
    .gauge(
        "rebootmgr_blocked",
        "1 when the last run was held back; label reason: what held it (checks_failed, lock_busy, stop_flag, …; empty when nothing did).",
    )
    .sample(
        "rebootmgr_blocked",
        &[("reason", o.blocked_by.unwrap_or(""))],
        f64::from(u8::from(o.blocked_by.is_some())),
    );
    t
}

/// Writes the run's metrics (best effort: a warning when it cannot). The
/// default file's directory missing is only an info line: node_exporter is
/// not set up on this node, and every timer run would warn about it again;
/// a file an operator named (flag, environment, config) that cannot be
/// written is a warning.
pub fn write(cfg: &MetricsConfig, root: &Root, o: &Outcome, slot_held: Option<bool>) {
    let t = render(o, slot_held, umm_core::fsutil::now_unix());
    match metrics::write(root, &cfg.file, &t) {
        Ok(Written::Done(p)) => log::debug!("metrics written to {}", p.display()),
        Ok(Written::Off) => {}
        Err(WriteError::MissingDir(e)) if cfg.file == std::path::Path::new(DEFAULT_FILE) => {
            log::info!("{e}")
        }
        Err(e) => log::warn!("{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_file_is_beside_umms_and_the_table_takes_one_key() {
        assert_eq!(
            MetricsConfig::default().file,
            PathBuf::from("/var/lib/prometheus/node-exporter/rebootmgr.prom")
        );
        assert_eq!(
            std::path::Path::new(DEFAULT_FILE).parent(),
            std::path::Path::new(umm_core::config::DEFAULT_METRICS_FILE).parent()
        );
        let c: MetricsConfig = toml::from_str("file = \"/x/r.prom\"").unwrap();
        assert_eq!(c.file, PathBuf::from("/x/r.prom"));
        let c: MetricsConfig = toml::from_str("").unwrap();
        assert_eq!(c, MetricsConfig::default());
        let e = toml::from_str::<MetricsConfig>("fil = \"/x\"").unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }

    #[test]
    fn a_refusal_is_blocked_by_its_reason_an_error_is_not() {
        let o = Outcome::aborted(&Abort::new(Exit::LockBusy, "busy"));
        assert_eq!(
            (o.result, o.exit_code, o.blocked_by),
            ("lock_busy", 4, Some("lock_busy"))
        );
        let o = Outcome::aborted(&Abort::new(Exit::TaskFailed, "x"));
        assert_eq!((o.result, o.blocked_by), ("task_failed", None));
        let text = render(&o, Some(false), 7).text().to_string();
        assert!(
            text.contains("rebootmgr_blocked{reason=\"\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("rebootmgr_last_run_exit_code 100\n"),
            "{text}"
        );
        assert!(text.contains("rebootmgr_slot_held 0\n"), "{text}");
    }
}
