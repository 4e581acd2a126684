//! `umm on [--no-reboot] [--replace-command] [--skip-hooks] [-- COMMAND...]`:
//! run the pre-on hooks, persist a maintenance request (with the command as
//! an argv list), reboot. `umm on --via-grub [--no-reboot] [--skip-hooks]`:
//! select GRUB's maintenance entry for the next boot only instead.

use super::init::InitSystem;
use super::{caller, format_time, require_root, show_argv, CliError, CliResult, Exit, Snapshot};
use crate::grub;
use crate::hooks::{self, Transition};
use umm_core::fsutil;
use umm_core::paths::Root;
use umm_core::state::{Request, State, StateLock};

#[derive(Debug, Clone, Default)]
pub struct OnArgs {
    pub no_reboot: bool,
    pub replace_command: bool,
    pub skip_hooks: bool,
    /// Select GRUB's maintenance entry once (grubenv next_entry) instead of
    /// persisting a request.
    pub via_grub: bool,
    /// Empty: no scheduled command.
    pub command: Vec<String>,
}

pub fn run(root: &Root, args: &OnArgs, init: &dyn InitSystem) -> CliResult {
    if args.command.first().is_some_and(|c| c.trim().is_empty()) {
        return Err(CliError {
            exit: Exit::Usage,
            message: "the scheduled COMMAND after '--' is an empty word: give a program, e.g. 'umm on -- apt-get -y dist-upgrade'".into(),
        });
    }
    require_root("on")?;
    let lock = super::lock(root)?;
    let snap = Snapshot::read(root);
    super::report_config_problems(&snap);
    let cfg = &snap.loaded.config;
    if !cfg.enabled {
        return Err(CliError::refused(format!(
            "umm is disabled (enabled = false, set by {}), so no boot would enter maintenance mode; nothing changed. Run 'umm enable' first",
            snap.loaded.origin("enabled")
        )));
    }
    if args.via_grub {
        return via_grub(root, args, &snap, init);
    }
    let command = (!args.command.is_empty()).then(|| args.command.clone());
    let existing = snap.state.state.request.clone();

    if snap.in_maintenance() {
        let reason = snap.reason().unwrap_or("unknown");
        if !args.replace_command {
            let hint = if command.is_some() {
                " To replace the scheduled command, add --replace-command."
            } else {
                ""
            };
            return Err(CliError::refused(format!(
                "already in maintenance mode (reason: {reason}); nothing changed.{hint} Leave with 'umm off'"
            )));
        }
        // A new request id makes umm-command.service run the new command.
        let now = fsutil::now_unix();
        let req = Request {
            requested_at: now,
            requested_by: caller(),
            command: command.clone(),
        };
        save_request(&lock, &snap, |st| st.replace_request(req))?;
        match &command {
            Some(c) => crate::outln!(
                "already in maintenance mode (reason: {reason}); the scheduled command is now: {}\nrun it now with 'systemctl start umm-command.service' (it also runs at the next boot into maintenance mode)",
                show_argv(c)
            ),
            None => crate::outln!(
                "already in maintenance mode (reason: {reason}); the scheduled command is removed"
            ),
        }
        return Ok(Exit::Ok);
    }

    let req = match existing {
        Some(old) => {
            if command.is_some() && command != old.command && !args.replace_command {
                let old_cmd = old
                    .command
                    .as_deref()
                    .map(show_argv)
                    .unwrap_or_else(|| "none".into());
                return Err(CliError::refused(format!(
                    "a maintenance request made {} by {} is already pending with scheduled command: {old_cmd}; nothing changed. Add --replace-command to replace it, or cancel the request with 'umm off'",
                    format_time(old.requested_at),
                    old.requested_by
                )));
            }
            crate::outln!(
                "a maintenance request made {} by {} is already pending (its reboot has not happened)",
                format_time(old.requested_at),
                old.requested_by
            );
            let command = if args.replace_command || command.is_some() {
                command.clone()
            } else {
                old.command.clone()
            };
            Request { command, ..old }
        }
        None => Request {
            requested_at: fsutil::now_unix(),
            requested_by: caller(),
            command: command.clone(),
        },
    };

    hooks_and_slot(root, args, &snap, "requested")?;
    let scheduled = req.command.as_deref().map(show_argv);
    let now = fsutil::now_unix();
    save_request(&lock, &snap, |st| st.request_maintenance(req, now))?;
    match scheduled {
        Some(c) => crate::outln!("maintenance mode requested; scheduled command: {c}"),
        None => crate::outln!("maintenance mode requested"),
    }
    reboot_unless(args.no_reboot, init)
}

/// `--via-grub`: the next boot is GRUB's umm-maintenance entry (kernel
/// command line `umm=1`, reason `cmdline`), once; nothing is persisted in
/// umm's state, so no scheduled command.
fn via_grub(root: &Root, args: &OnArgs, snap: &Snapshot, init: &dyn InitSystem) -> CliResult {
    if snap.in_maintenance() {
        return Err(CliError::refused(format!(
            "already in maintenance mode (reason: {}); nothing changed. Leave with 'umm off'",
            snap.reason().unwrap_or("unknown")
        )));
    }
    let env = grub::check_one_shot(root)
        .map_err(|e| CliError::failed(format!("--via-grub: {e}; nothing changed")))?;
    hooks_and_slot(root, args, snap, "cmdline")?;
    grub::select_once(root, &env).map_err(|e| {
        CliError::failed(format!(
            "--via-grub: {e}; run 'grub-editenv {} unset next_entry' to be sure the next boot is normal",
            env.path.display()
        ))
    })?;
    crate::outln!(
        "GRUB boots the maintenance entry {} once: next_entry={} in {}",
        grub::ENTRY_ID,
        grub::ENTRY_ID,
        env.path.display()
    );
    reboot_unless(args.no_reboot, init)
}

/// The pre-on hooks (with `UMM_REASON=reason`), then `[pacemaker]`'s
/// standby, then `[coordination]`'s slot (a refused slot undoes the standby).
fn hooks_and_slot(
    root: &Root,
    args: &OnArgs,
    snap: &Snapshot,
    reason: &str,
) -> Result<(), CliError> {
    if args.skip_hooks {
        crate::outln!("skipping the pre-on hooks (--skip-hooks)");
    } else {
        let n = hooks::run(
            root,
            Transition::On,
            reason,
            snap.loaded.config.hook_timeout,
        )
        .map_err(CliError::failed)?;
        if n > 0 {
            crate::outln!("ran {n} pre-on hook(s)");
        }
    }
    super::pacemaker::enter(root, &snap.loaded)?;
    super::coord::enter(&snap.loaded).inspect_err(|_| {
        if super::pacemaker::standby_pending(root, &snap.loaded) {
            super::pacemaker::leave_now(root, &snap.loaded);
        }
    })
}

fn reboot_unless(no_reboot: bool, init: &dyn InitSystem) -> CliResult {
    if no_reboot {
        crate::outln!("the next boot enters maintenance mode (--no-reboot: reboot when ready; cancel with 'umm off')");
        return Ok(Exit::Ok);
    }
    crate::outln!("rebooting into maintenance mode");
    let how = init.reboot()?;
    crate::outln!("{how}");
    Ok(Exit::Ok)
}

fn save_request(
    lock: &StateLock,
    snap: &Snapshot,
    change: impl FnOnce(&mut State),
) -> Result<(), CliError> {
    super::update_state(
        lock,
        snap,
        change,
        "nothing was requested. Check that the file system is writable and retry",
    )
}
