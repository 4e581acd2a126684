//! `umm enable` / `umm disable [--force]`: the master switch, kept in one
//! drop-in so the admin's own files are never edited. After writing, the
//! configuration is read again: if a file read later still decides
//! `enabled`, the command names it and fails.

use super::{format_time, require_root, CliError, CliResult, Exit, Snapshot};
use std::path::{Path, PathBuf};
use umm_core::config::{self, Origin};
use umm_core::fsutil;
use umm_core::paths::Root;
use umm_core::state;

/// The drop-in that holds the switch (late in the order on purpose).
pub const SWITCH_FILE: &str = "/etc/umm/umm.toml.d/90-umm-switch.toml";

pub fn run(root: &Root, enable: bool, force: bool) -> CliResult {
    let name = if enable { "enable" } else { "disable" };
    require_root(name)?;
    let lock = super::lock(root)?;
    let snap = Snapshot::read(root);
    super::report_config_problems(&snap);
    let pending = snap.state.state.request.clone();
    if !enable {
        if let (Some(r), false) = (&pending, force) {
            return Err(CliError::refused(format!(
                "a maintenance request made {} by {} is pending; nothing changed. Cancel it with 'umm off', or run 'umm disable --force' to cancel it and disable",
                format_time(r.requested_at),
                r.requested_by
            )));
        }
    }

    let now = fsutil::now_unix();
    // Disabling changes the state first and the switch second: a power cut
    // between the two leaves umm enabled with the request cancelled (what
    // --force asked for), never disabled with a request that the next
    // 'umm enable' would bring back. If the switch cannot be written or does
    // not take effect, the state is put back as it was.
    let mut cancelled = None;
    let mut before = None;
    if !enable {
        let (old, req) = super::update_state(
            &lock,
            &snap,
            |st| (st.clone(), st.disable(now)),
            &format!("nothing was changed. Fix the file system and run 'umm {name}' again"),
        )?;
        before = Some(old);
        cancelled = req;
    }
    if let Err(e) = write_switch(root, enable).and_then(|()| check_switch(root, enable)) {
        if let Some(old) = before {
            let dir = &snap.loaded.config.state_dir;
            if let Err(undo) = state::update_locked(&lock, root, dir, |st| *st = old) {
                return Err(CliError::failed(format!(
                    "{}; and putting the state back failed: {undo}, so the request is cancelled and umm is still enabled. Fix the file system and run 'umm {name}' again",
                    e.message
                )));
            }
        }
        return Err(e);
    }
    if enable {
        super::update_state(
            &lock,
            &snap,
            |st| st.enable(now),
            &format!("the switch is written: fix the file system and run 'umm {name}' again"),
        )?;
    }
    if let Some(r) = cancelled {
        crate::outln!(
            "cancelled the maintenance request made {} by {} (--force)",
            format_time(r.requested_at),
            r.requested_by
        );
    }
    crate::outln!(
        "umm is {}: enabled = {enable} is set by {SWITCH_FILE}",
        if enable { "enabled" } else { "disabled" }
    );
    if !enable {
        crate::outln!(
            "the unclean-boot count is cleared; boots are no longer counted or redirected"
        );
        if snap.in_maintenance() {
            crate::outln!("this boot is still in maintenance mode: leave it with 'umm off'");
        }
    }
    Ok(Exit::Ok)
}

/// After the switch is written: the configuration as read now must take
/// `enabled` from our drop-in, else the file read after it is named.
fn check_switch(root: &Root, enable: bool) -> Result<(), CliError> {
    let name = if enable { "enable" } else { "disable" };
    let loaded = config::load(root);
    let ours = Origin::File(PathBuf::from(SWITCH_FILE));
    let origin = loaded.origin("enabled");
    if origin == ours && loaded.config.enabled == enable {
        return Ok(());
    }
    let about_ours: Vec<&String> = loaded
        .errors
        .iter()
        .filter(|e| e.contains(SWITCH_FILE))
        .collect();
    let why = if about_ours.is_empty() {
        format!(
            "{origin} is read after it and sets enabled = {}, so it wins: remove 'enabled' from that file and run 'umm {name}' again",
            loaded.config.enabled
        )
    } else {
        format!(
            "it was not used: {}",
            about_ours
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        )
    };
    Err(CliError::failed(format!(
        "wrote enabled = {enable} to {SWITCH_FILE}, but {why}; the state was not changed"
    )))
}

fn write_switch(root: &Root, enable: bool) -> Result<(), CliError> {
    let fail = |what: &Path, e: std::io::Error| {
        CliError::failed(format!(
            "cannot write {}: {e}; nothing was changed. Check that /etc is writable and retry",
            what.display()
        ))
    };
    // write_atomic creates /etc/umm/umm.toml.d 0755 whatever the umask and
    // refuses a directory umm would not read the switch from.
    let text = format!(
        "# Written by 'umm {}'; change it with 'umm enable' / 'umm disable'.\nenabled = {enable}\n",
        if enable { "enable" } else { "disable" }
    );
    fsutil::write_atomic(&root.path(SWITCH_FILE), text.as_bytes(), 0o644)
        .map_err(|e| fail(Path::new(SWITCH_FILE), e))
}
