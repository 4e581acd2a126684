//! The phase decisions of a run (flow.rs), as pure functions of the facts
//! flow.rs reads from Consul and the node: no I/O here, so the rules are
//! tested in milliseconds (the tests below); the real-Consul tests in
//! rebootmgr/tests/ cover the protocol around them.
//!
//! A step returns `Ok(None)` to go on, `Ok(Some(done))` to end the run
//! successfully, `Err(abort)` to end it with that exit code.

use crate::exit::{Abort, Exit};
use crate::flow::Done;
use crate::trigger::Trigger;
use std::time::Duration;
use umm_coord::lock::Acquire;
use umm_coord::protocol::{Keys, Marker, MarkerOwner, NodeConfig};
use umm_core::tasks::{TaskError, TaskStatus};

pub type Step = Result<Option<Done>, Abort>;

/// Which phase this run is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    PreBoot,
    /// This node's reboot marker is there: finish after the reboot.
    PostBoot(Marker),
}

/// Start: the per-node marker decides; without it, a shared (Python tool's)
/// marker naming this node means the same.
pub fn phase(
    keys: &Keys,
    marker: Option<Marker>,
    shared_marker_node: Option<&str>,
) -> Result<Phase, Abort> {
    match marker {
        Some(m) if m.owner == MarkerOwner::Umm => Err(Abort::new(
            Exit::InUmmMaintenance,
            "node is in umm maintenance (coordinated); `umm off` ends it",
        )),
        Some(m) => Ok(Phase::PostBoot(m)),
        None if shared_marker_node == Some(keys.node.as_str()) => Ok(Phase::PostBoot(Marker {
            owner: MarkerOwner::Rebootmgr,
            boot_id: None,
            since: 0,
            group: keys.group.clone(),
        })),
        None => Ok(Phase::PreBoot),
    }
}

/// Pre-boot and settle: with `--check-triggers`, no trigger ends the run
/// (`why` says when); without, the command line asked for the reboot.
pub fn required(check_triggers: bool, trigger: Option<&Trigger>, why: &str) -> Step {
    Ok((check_triggers && trigger.is_none()).then(|| Done::NothingToDo(why.into())))
}

/// Any phase: a set stop flag (key, reason) ends the run; the operator takes over.
pub fn stop_flag(flag: Option<(String, String)>) -> Step {
    match flag {
        Some((k, v)) => Err(Abort::new(
            Exit::StopFlag,
            format!("stop flag {k} is set: {v:?}"),
        )),
        None => Ok(None),
    }
}

/// Pre-boot: the node's config must exist, parse and be enabled.
pub fn node_config(keys: &Keys, config: Option<&Result<NodeConfig, String>>) -> Step {
    match config {
        None => Err(Abort::new(
            Exit::NotConfigured,
            format!(
                "{} is missing (`rebootmgr config --enable` creates it)",
                keys.config()
            ),
        )),
        Some(Err(e)) => Err(Abort::new(
            Exit::NotConfigured,
            format!("{}: {e}", keys.config()),
        )),
        Some(Ok(cfg)) if !cfg.enabled => Err(Abort::new(
            Exit::NodeDisabled,
            format!("rebootmgr is disabled for this node: {:?}", cfg.message),
        )),
        Some(Ok(_)) => Ok(None),
    }
}

/// Pre-boot: a misspelt --node must not pass health checks on no services.
/// The local agent's own node missing from the catalog is not a misspelling:
/// the agent has not (re)registered yet (it just started, or the servers are
/// recovering from a restart): try later.
pub fn registered(node: &str, in_catalog: bool, local_agent: bool) -> Step {
    if in_catalog {
        return Ok(None);
    }
    if local_agent {
        return Err(Abort::new(
            Exit::ConsulUnreachable,
            format!("node {node} (this agent) is not in Consul's catalog yet: the agent has not synced since it or the servers started; try later"),
        ));
    }
    Err(Abort::new(
        Exit::NotConfigured,
        format!("node {node} is not registered in Consul's catalog"),
    ))
}

/// Pre-boot, one slot per group: a node driven by the Python tool announces
/// itself only by the shared marker, which must then be free or ours.
pub fn shared_marker(keys: &Keys, max_parallel: u32, holder: Option<&str>) -> Step {
    match holder {
        Some(other) if max_parallel <= 1 && other != keys.node => Err(Abort::new(
            Exit::LockBusy,
            format!("reboot of {other} in progress ({})", keys.shared_marker()),
        )),
        _ => Ok(None),
    }
}

/// Pre-boot: taking a slot.
pub fn slot(acquired: Acquire) -> Step {
    match acquired {
        Acquire::Acquired => Ok(None),
        Acquire::Busy { holders, limit } => Err(Abort::new(
            Exit::LockBusy,
            format!("all {limit} reboot slot(s) taken by {}", holders.join(", ")),
        )),
    }
}

/// Settle: the slot must still be ours.
pub fn slot_kept(held: bool) -> Step {
    if held {
        return Ok(None);
    }
    Err(Abort::new(
        Exit::LockLost,
        "lost the reboot slot during the settle wait",
    ))
}

/// Pre- and post-boot: members not alive, then Consul's quorum (pre-boot
/// only), then failing checks, block.
pub fn health(members_not_alive: Vec<String>, quorum: Vec<String>, failing: Vec<String>) -> Step {
    if !members_not_alive.is_empty() {
        return Err(Abort::new(
            Exit::MemberNotAlive,
            members_not_alive.join("; "),
        ));
    }
    if !quorum.is_empty() {
        return Err(Abort::new(Exit::QuorumAtRisk, quorum.join("; ")));
    }
    if !failing.is_empty() {
        return Err(Abort::new(
            Exit::ChecksFailed,
            format!("checks failing: {}", failing.join("; ")),
        ));
    }
    Ok(None)
}

/// Post-boot: how long to wait before asking the health rules again after
/// `blocked`, with `left` of `--wait-until-healthy` remaining (`None`: the
/// option is not set). `None`: give up with `blocked`.
pub fn health_retry(blocked: &Abort, left: Option<Duration>) -> Option<Duration> {
    let unhealthy = blocked.exit == Exit::ChecksFailed || blocked.exit == Exit::MemberNotAlive;
    match left {
        Some(left) if unhealthy && !left.is_zero() => Some(Duration::from_secs(2).min(left)),
        _ => None,
    }
}

/// Tasks: what a failed task directory means. `None` for an interrupted
/// run, which the stop flag that interrupted it explains.
pub fn task_failure(e: &TaskError) -> Option<Abort> {
    let exit = match e {
        TaskError::Interrupted { .. } => return None,
        TaskError::Failed(o) if o.status == TaskStatus::TimedOut => Exit::TaskTimedOut,
        TaskError::Failed(_) => Exit::TaskFailed,
        TaskError::Unsafe(_) | TaskError::Io { .. } => Exit::TaskRefused,
    };
    Some(Abort::new(exit, e.to_string()))
}

/// Abort: whether the post-boot tasks must undo the pre-boot tasks after
/// the run ended with `result`. Not after a reboot or a dry run, not for a
/// stop flag (the operator takes over), not in a dry run.
pub fn undo_pre_boot_tasks(result: &Result<Done, Abort>, dry_run: bool) -> bool {
    match result {
        Ok(Done::RebootIssued) | Ok(Done::DryRun) => false,
        // The operator stopped it (a stop flag, or disabled the node during
        // the settle wait): the operator takes over.
        Err(a) if a.exit == Exit::StopFlag || a.exit == Exit::NodeDisabled => false,
        _ => !dry_run,
    }
}

/// Abort: undoing failed; always for an operator, and says both outcomes.
pub fn undo_failed(undo: Abort, result: &Result<Done, Abort>) -> Abort {
    Abort::new(
        // A panic stays a panic (exit 70), whatever the undo did.
        match result {
            Err(a) if a.exit == Exit::Internal => Exit::Internal,
            _ => undo.exit.max_severity(),
        },
        format!(
            "undoing the pre-boot tasks failed: {}; the run had ended with: {}",
            undo.message,
            match result {
                Ok(_) => "reboot no longer required".to_string(),
                Err(a) => a.to_string(),
            }
        ),
    )
}

/// Post-boot: did the node reboot since the marker was written? An
/// unchanged boot id is a reboot still on its way within `grace`, a failed
/// one after it. Unknown boot ids (the Python tool's marker) pass.
pub fn rebooted(
    marker: &Marker,
    boot_id_now: Option<&str>,
    now_unix: u64,
    grace: Duration,
) -> Step {
    let (Some(then), Some(now)) = (marker.boot_id.as_deref(), boot_id_now) else {
        return Ok(None);
    };
    if then != now {
        return Ok(None);
    }
    let age = now_unix.saturating_sub(marker.since);
    if age < grace.as_secs() {
        return Err(Abort::new(
            Exit::RebootPending,
            format!("reboot issued {age} s ago, not yet happened"),
        ));
    }
    Err(Abort::new(
        Exit::DidNotReboot,
        format!("reboot issued {age} s ago but the boot id is unchanged: the node did not reboot"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn keys(group: Option<&str>) -> Keys {
        Keys::new("n1", group)
    }

    /// The exit of a step, or "go on"/"done: …".
    fn outcome(r: Step) -> String {
        match r {
            Ok(None) => "go on".into(),
            Ok(Some(d)) => format!("done: {d:?}"),
            Err(a) => format!("exit {}: {}", a.exit.code(), a.message),
        }
    }

    fn marker(owner: MarkerOwner, boot_id: Option<&str>, since: u64) -> Marker {
        Marker {
            owner,
            boot_id: boot_id.map(str::to_string),
            since,
            group: None,
        }
    }

    #[test]
    fn phase_follows_the_markers() {
        let rm = marker(MarkerOwner::Rebootmgr, Some("b"), 5);
        let umm = marker(MarkerOwner::Umm, None, 5);
        let shared_ours = Marker {
            owner: MarkerOwner::Rebootmgr,
            boot_id: None,
            since: 0,
            group: Some("g".into()),
        };
        for (marker, shared, want) in [
            (None, None, Ok(Phase::PreBoot)),
            (None, Some("n2"), Ok(Phase::PreBoot)),
            (None, Some("n1"), Ok(Phase::PostBoot(shared_ours.clone()))),
            (Some(rm.clone()), None, Ok(Phase::PostBoot(rm.clone()))),
            // The per-node marker wins over a shared one naming another node.
            (
                Some(rm.clone()),
                Some("n2"),
                Ok(Phase::PostBoot(rm.clone())),
            ),
            (Some(umm.clone()), None, Err(Exit::InUmmMaintenance)),
            (Some(umm.clone()), Some("n1"), Err(Exit::InUmmMaintenance)),
        ] {
            let got = phase(&keys(Some("g")), marker.clone(), shared).map_err(|a| a.exit);
            assert_eq!(got, want, "{marker:?} {shared:?}");
        }
    }

    #[test]
    fn triggers_matter_only_with_check_triggers() {
        let t = Trigger::File("/var/run/reboot-required");
        for (check, trig, want) in [
            (false, None, "go on"),
            (false, Some(&t), "go on"),
            (true, Some(&t), "go on"),
            (true, None, "done: NothingToDo(\"why\")"),
        ] {
            assert_eq!(
                outcome(required(check, trig, "why")),
                want,
                "{check} {trig:?}"
            );
        }
    }

    #[test]
    fn pre_boot_gates() {
        let cfg = |enabled: bool| {
            Ok(NodeConfig {
                enabled,
                message: "m".into(),
                ..Default::default()
            })
        };
        let k = keys(None);
        let table: Vec<(&str, Step, &str)> = vec![
            ("no stop flag", stop_flag(None), "go on"),
            (
                "stop flag",
                stop_flag(Some(("service/rebootmgr/stop".into(), "r".into()))),
                "exit 102: stop flag service/rebootmgr/stop is set: \"r\"",
            ),
            (
                "no config",
                node_config(&k, None),
                "exit 104: service/rebootmgr/nodes/n1/config is missing (`rebootmgr config --enable` creates it)",
            ),
            (
                "bad config",
                node_config(&k, Some(&Err("not JSON".into()))),
                "exit 104: service/rebootmgr/nodes/n1/config: not JSON",
            ),
            (
                "disabled",
                node_config(&k, Some(&cfg(false))),
                "exit 101: rebootmgr is disabled for this node: \"m\"",
            ),
            ("enabled", node_config(&k, Some(&cfg(true))), "go on"),
            ("registered", registered("n1", true, false), "go on"),
            (
                "not registered",
                registered("n1", false, false),
                "exit 104: node n1 is not registered in Consul's catalog",
            ),
            (
                "this agent, not synced yet",
                registered("n1", false, true),
                "exit 6: node n1 (this agent) is not in Consul's catalog yet: the agent has not synced since it or the servers started; try later",
            ),
            ("shared marker free", shared_marker(&k, 1, None), "go on"),
            ("shared marker ours", shared_marker(&k, 1, Some("n1")), "go on"),
            (
                "shared marker another's",
                shared_marker(&k, 1, Some("n2")),
                "exit 4: reboot of n2 in progress (service/rebootmgr/reboot_in_progress)",
            ),
            (
                "shared marker with N slots",
                shared_marker(&k, 2, Some("n2")),
                "go on",
            ),
            ("slot taken", slot(Acquire::Acquired), "go on"),
            (
                "slots busy",
                slot(Acquire::Busy {
                    holders: vec!["n2".into(), "n3".into()],
                    limit: 2,
                }),
                "exit 4: all 2 reboot slot(s) taken by n2, n3",
            ),
            ("slot kept", slot_kept(true), "go on"),
            (
                "slot lost",
                slot_kept(false),
                "exit 5: lost the reboot slot during the settle wait",
            ),
            ("healthy", health(vec![], vec![], vec![]), "go on"),
            (
                "member down",
                health(vec!["n3 failed".into()], vec!["q".into()], vec!["c1".into()]),
                "exit 3: n3 failed",
            ),
            (
                "quorum at risk",
                health(vec![], vec!["Consul quorum: …".into()], vec!["c1".into()]),
                "exit 10: Consul quorum: …",
            ),
            (
                "checks failing",
                health(vec![], vec![], vec!["c1".into(), "c2".into()]),
                "exit 2: checks failing: c1; c2",
            ),
        ];
        for (what, got, want) in table {
            assert_eq!(outcome(got), want, "{what}");
        }
    }

    #[test]
    fn post_boot_needs_a_new_boot_id() {
        let grace = Duration::from_secs(900);
        let m = marker(MarkerOwner::Rebootmgr, Some("b1"), 1000);
        let python = marker(MarkerOwner::Rebootmgr, None, 0);
        for (marker, now_id, now, want) in [
            (&m, Some("b2"), 5000, "go on"),
            (&m, None, 5000, "go on"),
            (&python, Some("b1"), 5000, "go on"),
            (&m, Some("b1"), 1100, "exit 8: reboot issued 100 s ago, not yet happened"),
            (
                &m,
                Some("b1"),
                1900,
                "exit 103: reboot issued 900 s ago but the boot id is unchanged: the node did not reboot",
            ),
            // A clock that went back is "just issued", not a failure.
            (&m, Some("b1"), 10, "exit 8: reboot issued 0 s ago, not yet happened"),
        ] {
            assert_eq!(outcome(rebooted(marker, now_id, now, grace)), want, "{now_id:?} {now}");
        }
    }

    #[test]
    fn health_waits_only_for_health_and_only_within_the_deadline() {
        let checks = Abort::new(Exit::ChecksFailed, "c");
        let member = Abort::new(Exit::MemberNotAlive, "m");
        let consul = Abort::new(Exit::ConsulUnreachable, "x");
        let s = Duration::from_secs;
        for (blocked, left, want) in [
            (&checks, None, None),
            (&checks, Some(s(0)), None),
            (&checks, Some(s(60)), Some(s(2))),
            (
                &checks,
                Some(Duration::from_millis(300)),
                Some(Duration::from_millis(300)),
            ),
            (&member, Some(s(60)), Some(s(2))),
            (&consul, Some(s(60)), None),
        ] {
            assert_eq!(health_retry(blocked, left), want, "{blocked} {left:?}");
        }
    }

    #[test]
    fn task_failures_map_to_exits() {
        let failed = |status| {
            TaskError::Failed(umm_core::tasks::TaskOutcome {
                path: PathBuf::from("/etc/rebootmgr/pre_boot_tasks/10-x"),
                status,
                duration: Duration::from_secs(1),
            })
        };
        for (e, want) in [
            (failed(TaskStatus::Failed(3)), Some(Exit::TaskFailed)),
            (failed(TaskStatus::TimedOut), Some(Exit::TaskTimedOut)),
            (
                TaskError::Io {
                    path: PathBuf::from("/x"),
                    err: std::io::Error::other("e"),
                },
                Some(Exit::TaskRefused),
            ),
            (
                TaskError::Unsafe(umm_core::perms::UnsafeFile {
                    path: PathBuf::from("/x"),
                    culprit: PathBuf::from("/x"),
                    problem: "writable by others".into(),
                }),
                Some(Exit::TaskRefused),
            ),
            (
                TaskError::Interrupted {
                    path: PathBuf::from("/x"),
                },
                None,
            ),
        ] {
            let got = task_failure(&e);
            assert_eq!(got.as_ref().map(|a| a.exit), want, "{e}");
            if let Some(a) = got {
                assert_eq!(a.message, e.to_string());
            }
        }
    }

    #[test]
    fn abort_undoes_the_pre_boot_tasks_unless_rebooted_stopped_or_dry() {
        let stop = || Err(Abort::new(Exit::StopFlag, "s"));
        let busy = || Err(Abort::new(Exit::ChecksFailed, "c"));
        let gone = || Ok(Done::NothingToDo("reboot no longer required".into()));
        for (result, dry, want) in [
            (Ok(Done::RebootIssued), false, false),
            (Ok(Done::DryRun), true, false),
            (stop(), false, false),
            (Err(Abort::new(Exit::NodeDisabled, "d")), false, false),
            (busy(), false, true),
            (busy(), true, false),
            (gone(), false, true),
            (gone(), true, false),
        ] {
            assert_eq!(undo_pre_boot_tasks(&result, dry), want, "{result:?} {dry}");
        }
    }

    #[test]
    fn a_failed_undo_needs_an_operator_and_names_both() {
        for (undo, result, exit, msg) in [
            (
                Abort::new(Exit::TaskFailed, "t failed"),
                Err(Abort::new(Exit::ChecksFailed, "checks failing: c")),
                Exit::TaskFailed,
                "undoing the pre-boot tasks failed: t failed; the run had ended with: checks failing: c (exit 2)",
            ),
            (
                Abort::new(Exit::StopFlag, "s"),
                Ok(Done::NothingToDo("x".into())),
                Exit::StopFlag,
                "undoing the pre-boot tasks failed: s; the run had ended with: reboot no longer required",
            ),
            (
                Abort::new(Exit::ConsulUnreachable, "u"),
                Err(Abort::new(Exit::LockLost, "l")),
                Exit::TaskFailed,
                "undoing the pre-boot tasks failed: u; the run had ended with: l (exit 5)",
            ),
        ] {
            let a = undo_failed(undo, &result);
            assert_eq!((a.exit, a.message.as_str()), (exit, msg));
        }
    }
}
