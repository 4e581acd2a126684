//! `umm enable` / `umm disable [--force]`: the master switch, kept in one
//! drop-in so the admin's own files are never edited. After writing, the
//! configuration is read again: if a file read later still decides
//! `enabled`, the command names it and fails.

use super::{format_time, require_root, CliError, CliResult, Exit, Snapshot};
use std::path::{Path, PathBuf};
use umm_core::config::{self, Origin};
use umm_core::fsutil;
use umm_core::paths::Root;

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

    write_switch(root, enable)?;
    let loaded = config::load(root);
    let ours = Origin::File(PathBuf::from(SWITCH_FILE));
    let origin = loaded.origin("enabled");
    if origin != ours || loaded.config.enabled != enable {
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
        return Err(CliError::failed(format!(
            "wrote enabled = {enable} to {SWITCH_FILE}, but {why}; the state was not changed"
        )));
    }

    let now = fsutil::now_unix();
    // The config as it is now, read after the switch was written.
    let snap = Snapshot { loaded, ..snap };
    let cancelled = super::update_state(
        &lock,
        &snap,
        |st| {
            if enable {
                st.enable(now);
                None
            } else {
                st.disable(now)
            }
        },
        &format!("the switch is written: fix the file system and run 'umm {name}' again"),
    )?;
    if let Some(r) = cancelled {
        println!(
            "cancelled the maintenance request made {} by {} (--force)",
            format_time(r.requested_at),
            r.requested_by
        );
    }
    println!(
        "umm is {}: enabled = {enable} is set by {SWITCH_FILE}",
        if enable { "enabled" } else { "disabled" }
    );
    if !enable {
        println!("the unclean-boot count is cleared; boots are no longer counted or redirected");
        if snap.in_maintenance() {
            println!("this boot is still in maintenance mode: leave it with 'umm off'");
        }
    }
    Ok(Exit::Ok)
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
