//! `[coordination]` for `umm on`/`umm off`: the same Consul coordination
//! rebootmgr uses (docs/rebootmgr.md). Entering maintenance mode takes the
//! group's reboot slot and sets Consul node maintenance, so HA peers see
//! "maintenance", not "failed". Leaving is deferred to
//! `umm-coordination.service` in normal operation, which releases both once
//! this node's rebootmgr-tagged checks pass. Without the table, nothing here
//! runs and umm works exactly as without Consul.

use super::CliError;
use std::path::PathBuf;
use umm_coord::consul::Consul;
use umm_coord::coordination::{self, CoordinationConfig, CoordinationError};
use umm_core::config::Loaded;
use umm_core::fsutil;
use umm_core::paths::Root;

/// Written by `umm off`; `umm boot coordination-leave` acts on it.
pub const PENDING_LEAVE: &str = "coordination-leave";

fn config(loaded: &Loaded) -> Result<Option<CoordinationConfig>, CliError> {
    let Some(table) = &loaded.config.coordination else {
        return Ok(None);
    };
    CoordinationConfig::from_table(table)
        .map(Some)
        .map_err(|e| {
            CliError::failed(format!(
                "{e} (in {}); fix it, or remove [coordination] to use umm without Consul",
                loaded.origin("coordination")
            ))
        })
}

fn node_name(cfg: &CoordinationConfig) -> Result<String, CliError> {
    Consul::from_env(cfg.consul.as_deref()).and_then(|c| c.agent_node_name()).map_err(|e| {
        CliError::failed(format!(
            "[coordination]: cannot ask the local Consul agent for this node's name: {e}; nothing changed. Start the agent, or remove [coordination]"
        ))
    })
}

/// Before a request is saved: take the slot and set node maintenance.
pub fn enter(loaded: &Loaded) -> Result<(), CliError> {
    let Some(cfg) = config(loaded)? else {
        return Ok(());
    };
    let node = node_name(&cfg)?;
    coordination::enter_maintenance(&cfg, &node).map_err(|e| {
        let msg = format!("[coordination]: {e}; nothing changed");
        match e {
            CoordinationError::Busy { .. } | CoordinationError::RebootInProgress => {
                CliError::refused(format!("{msg}. Try again when the other node is done"))
            }
            CoordinationError::QuorumAtRisk(_) => CliError::refused(format!(
                "{msg}. Bring the missing Consul server back (or replace it) first"
            )),
            _ => CliError::failed(format!(
                "{msg}. Retry, or remove [coordination] to proceed without Consul"
            )),
        }
    })?;
    crate::outln!("[coordination]: took a reboot slot and set Consul node maintenance for {node}");
    Ok(())
}

fn pending_path(root: &Root, loaded: &Loaded) -> PathBuf {
    root.path(loaded.config.state_dir.join(PENDING_LEAVE))
}

/// On `umm off`: leave a note for `umm-coordination.service`.
pub fn defer_leave(root: &Root, loaded: &Loaded) -> Result<(), CliError> {
    if loaded.config.coordination.is_none() {
        return Ok(());
    }
    let path = pending_path(root, loaded);
    fsutil::write_atomic(
        &path,
        format!("time={}\n", fsutil::now_unix()).as_bytes(),
        0o644,
    )
    .map_err(|e| CliError::failed(format!("cannot write {}: {e}", path.display())))?;
    crate::outln!("[coordination]: Consul node maintenance and the slot are released once this node's checks pass (umm-coordination.service)");
    Ok(())
}

/// What `umm boot coordination-leave` (umm-coordination.service) did.
pub enum Synced {
    Released,
    Announced(String),
    Nothing,
}

/// `umm boot coordination-leave`, in every boot (umm-coordination.service is
/// wanted by multi-user.target and umm.target): after `umm off`, release
/// once the node is healthy; in a maintenance boot nobody announced through
/// `umm on` (`umm=1`, a reboot loop), announce it: Consul node maintenance
/// with the reason, and the group's slot. An error makes the unit fail; it
/// is restarted (Restart=on-failure) until it succeeds.
pub fn sync(root: &Root, loaded: &Loaded) -> Result<Synced, CliError> {
    if leave_pending(root, loaded)? {
        return Ok(Synced::Released);
    }
    let snap = super::Snapshot::read(root);
    let (Some(cfg), Some(why)) = (config(loaded)?, snap.reason()) else {
        return Ok(Synced::Nothing);
    };
    let node = node_name(&cfg)?;
    // `umm on`'s own reason for a requested MM, so announcing it again
    // changes nothing.
    let reason = match why {
        "cmdline" => format!("umm: maintenance mode on {node} (umm=1 on the kernel command line)"),
        "reboot-loop" => format!(
            "umm: maintenance mode on {node} (after a reboot loop: {} unclean boots)",
            snap.state.state.unclean_boots
        ),
        _ => format!("umm: maintenance mode on {node}"),
    };
    coordination::announce_maintenance(&cfg, &node, &reason).map_err(|e| {
        CliError::failed(format!(
            "[coordination]: announcing this maintenance boot ({reason}): {e}; retried by umm-coordination.service (this boot stays in maintenance mode either way)"
        ))
    })?;
    Ok(Synced::Announced(reason))
}

/// After `umm off`: release once the node is healthy.
fn leave_pending(root: &Root, loaded: &Loaded) -> Result<bool, CliError> {
    let path = pending_path(root, loaded);
    if !path.exists() {
        return Ok(false);
    }
    let Some(cfg) = config(loaded)? else {
        let _ = std::fs::remove_file(&path);
        return Ok(false);
    };
    let node = node_name(&cfg)?;
    coordination::leave_maintenance(&cfg, &node).map_err(|e| {
        CliError::failed(format!(
            "[coordination]: {e}; Consul node maintenance and the slot are kept. Fix the failing checks; this runs again at the next boot, or run 'systemctl restart umm-coordination.service'"
        ))
    })?;
    std::fs::remove_file(&path)
        .map_err(|e| CliError::failed(format!("cannot remove {}: {e}", path.display())))?;
    Ok(true)
}
