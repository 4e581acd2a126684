//! `umm off [--skip-hooks]`: leave maintenance mode without a reboot (or
//! cancel a request whose reboot has not happened); `umm off reboot`: leave
//! it by rebooting into normal operation. Either form also clears a GRUB
//! `next_entry`/`saved_entry` that points at a maintenance entry, so leaving
//! MM always leaves it.

use super::init::InitSystem;
use super::{format_time, require_root, CliError, CliResult, Exit, Snapshot};
use crate::boot;
use crate::grub;
use crate::hooks::{self, Transition};
use umm_core::fsutil;
use umm_core::paths::Root;
use umm_core::state;

#[derive(Debug, Clone, Default)]
pub struct OffArgs {
    pub reboot: bool,
    pub skip_hooks: bool,
    /// After a resume whose target did not come up: start it again.
    pub retry: bool,
}

pub fn run(root: &Root, args: &OffArgs, init: &dyn InitSystem) -> CliResult {
    let name = if args.reboot { "off reboot" } else { "off" };
    require_root(name)?;
    let lock = super::lock(root)?;
    let snap = Snapshot::read(root);
    super::report_config_problems(&snap);
    let in_mm = snap.in_maintenance();
    let pending = snap.state.state.request.clone();
    let (grub_env, grub_sel) = grub_selections(root);

    if !in_mm && pending.is_none() && grub_sel.is_empty() {
        // A resume whose systemd part failed: starting the target again is
        // safe and needs no hooks (they ran, and the state is already updated).
        let resumed = snap.runtime.resumed && snap.boot_maintenance.is_some();
        if !args.reboot && resumed && args.retry {
            crate::outln!(
                "this boot was already resumed with 'umm off'; starting the default target again"
            );
            return resume(init);
        }
        let next = if args.reboot {
            "; to reboot anyway, use 'reboot'"
        } else if resumed {
            "; if the default target did not come up, fix the cause and run 'umm off --retry'"
        } else {
            ""
        };
        return Err(CliError::refused(format!(
            "not in maintenance mode (mode: {}) and no request is pending; nothing changed{next}",
            snap.mode().as_str()
        )));
    }

    let reason = snap.reason().unwrap_or("requested");
    let cfg = &snap.loaded.config;
    if args.skip_hooks {
        crate::outln!("skipping the pre-off hooks (--skip-hooks)");
    } else {
        let n = hooks::run(root, Transition::Off, reason, cfg.hook_timeout)
            .map_err(CliError::failed)?;
        if n > 0 {
            crate::outln!("ran {n} pre-off hook(s)");
        }
    }

    if let Some(env) = &grub_env {
        clear_grub(root, env, &grub_sel)?;
    }

    let now = fsutil::now_unix();
    super::update_state(
        &lock,
        &snap,
        |st| {
            if in_mm {
                st.resume(&snap.boot_id, now);
            } else {
                // The reboot never happened: cancel the request, keep watching this boot.
                st.cancel_request(now);
            }
        },
        &format!(
            "nothing was changed. Check that the file system is writable and retry 'umm {name}'"
        ),
    )?;
    if let Some(r) = &pending {
        crate::outln!(
            "cleared the maintenance request made {} by {}",
            format_time(r.requested_at),
            r.requested_by
        );
    }
    crate::outln!("unclean-boot count reset");
    if super::pacemaker::standby_pending(root, &snap.loaded) {
        if in_mm {
            crate::outln!("[pacemaker]: the node leaves Pacemaker standby once its pacemaker is back in the cluster (umm-coordination.service)");
        } else {
            super::pacemaker::leave_now(root, &snap.loaded);
        }
    }
    super::coord::defer_leave(root, &snap.loaded)?;

    if args.reboot {
        crate::outln!("rebooting into normal operation");
        let how = init.reboot().map_err(|e| CliError {
            message: format!(
                "{}; the request and the count are already cleared, so any reboot now boots normally",
                e.message
            ),
            ..e
        })?;
        crate::outln!("{how}");
        return Ok(Exit::Ok);
    }
    if !in_mm {
        crate::outln!(
            "maintenance mode request cancelled; this boot continues in normal operation"
        );
        return Ok(Exit::Ok);
    }
    let marker = format!("time={now}\nboot_id={}\n", snap.boot_id);
    fsutil::write_atomic(&root.path(state::RESUMED), marker.as_bytes(), 0o644).map_err(|e| {
        CliError::failed(format!(
            "cannot write {}: {e}; the state is already updated. Fix /run and retry 'umm off'",
            state::RESUMED
        ))
    })?;
    boot::remove_banner(root);
    resume(init)
}

/// grubenv's selections of a maintenance entry (none when there is no GRUB
/// or its grubenv cannot be read: `umm status` reports that).
fn grub_selections(root: &Root) -> (Option<grub::Env>, Vec<(&'static str, String)>) {
    match grub::read_env(root) {
        Ok(Some(env)) => {
            let sel = env.maintenance_selections();
            (Some(env), sel)
        }
        Ok(None) => (None, Vec::new()),
        Err(e) => {
            crate::errln!("umm: warning: {e}; GRUB's boot entry selection not checked");
            (None, Vec::new())
        }
    }
}

/// Before anything else changes: the boot loader must not send the next
/// boot back into maintenance mode.
fn clear_grub(
    root: &Root,
    env: &grub::Env,
    sel: &[(&'static str, String)],
) -> Result<(), CliError> {
    for (var, entry) in sel {
        let what = if *var == "next_entry" {
            "the next boot would have been maintenance mode"
        } else {
            "with GRUB_DEFAULT=saved every boot would have been maintenance mode"
        };
        crate::outln!(
            "GRUB's {var} in {} points at the maintenance entry {entry}: {what}",
            env.path.display()
        );
    }
    grub::clear(root, env, sel).map_err(|e| {
        CliError::failed(format!(
            "cannot clear it: {e}; nothing else was changed. Run '{}', then retry",
            grub::clear_hint(env, sel)
        ))
    })?;
    if !sel.is_empty() {
        let names: Vec<&str> = sel.iter().map(|(n, _)| *n).collect();
        crate::outln!("cleared {} (grub-editenv)", names.join(" and "));
    }
    Ok(())
}

fn resume(init: &dyn InitSystem) -> CliResult {
    let r = init.resume()?;
    for n in &r.notes {
        crate::outln!("{n}");
    }
    if !r.failed_units.is_empty() {
        crate::outln!("failed units: {}", r.failed_units.join(" "));
        crate::outln!("  inspect with 'systemctl status <unit>' and 'journalctl -b -u <unit>'");
    }
    if r.reached {
        crate::outln!("left maintenance mode: {} is up", r.target);
        Ok(Exit::Ok)
    } else {
        Err(CliError::failed(format!(
            "left maintenance mode, but {} did not come up; see 'systemctl list-jobs' and 'journalctl -b', fix the cause, then run 'umm off --retry'",
            r.target
        )))
    }
}
