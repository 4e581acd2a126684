//! umm's side of the coordination (`[coordination]` in umm's config): entering
//! maintenance takes one of the group's reboot slots and puts the Consul node
//! in maintenance, so HA peers see "maintenance" rather than "failed" and no
//! rebootmgr in the group reboots a peer meanwhile. Leaving waits until this
//! node's rebootmgr-tagged checks pass, then undoes both.
//!
//! The slot is kept by the same per-node marker a rebooting node uses (owner
//! "umm"), so it survives umm's own reboot into maintenance.

use crate::consul::{Consul, ConsulError};
use crate::health;
use crate::lock::{Acquire, Semaphore, Session};
use crate::protocol::{Keys, Marker, MarkerOwner, TAG};
use std::fmt;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct CoordinationConfig {
    /// Consul HTTP address; `None`: `CONSUL_HTTP_ADDR`, else http://127.0.0.1:8500.
    pub consul: Option<String>,
    /// Reboot group (shares the group's slots with rebootmgr); `None`: the
    /// group from the node's rebootmgr config, else the ungrouped lock.
    pub group: Option<String>,
    /// Slots per group (must match rebootmgr's `--max-parallel`).
    pub max_parallel: u32,
    pub session_ttl: Duration,
    /// How long `leave_maintenance` waits for the node's checks to pass.
    pub healthy_timeout: Duration,
    pub poll: Duration,
}

impl Default for CoordinationConfig {
    fn default() -> Self {
        CoordinationConfig {
            consul: None,
            group: None,
            max_parallel: 1,
            session_ttl: Duration::from_secs(60),
            healthy_timeout: Duration::from_secs(600),
            poll: Duration::from_secs(2),
        }
    }
}

impl CoordinationConfig {
    /// Reads umm's `[coordination]` table. Keys: `consul` (address), `group`,
    /// `max_parallel` (integer >= 1), `session_ttl`, `healthy_timeout`
    /// (durations with a unit, like every umm duration). Unknown keys and
    /// wrong types are errors naming the key.
    pub fn from_table(t: &toml::Table) -> Result<CoordinationConfig, String> {
        let mut c = CoordinationConfig::default();
        for (k, v) in t {
            // The type, not the value: config errors never echo content.
            let bad =
                |want: &str| format!("[coordination] {k}: expected {want}, got {}", v.type_str());
            match k.as_str() {
                "consul" => c.consul = Some(v.as_str().ok_or_else(|| bad("a string"))?.to_string()),
                "group" => {
                    c.group = Some(v.as_str().ok_or_else(|| bad("a string"))?.to_string())
                        .filter(|g| !g.is_empty())
                }
                "max_parallel" => {
                    c.max_parallel =
                        v.as_integer()
                            .filter(|n| *n >= 1 && *n <= u32::MAX as i64)
                            .ok_or_else(|| bad("an integer >= 1"))? as u32
                }
                "session_ttl" | "healthy_timeout" => {
                    let d = umm_core::duration::parse(
                        v.as_str().ok_or_else(|| bad("a duration like \"60s\""))?,
                    )
                    .map_err(|e| format!("[coordination] {k}: {e}"))?;
                    if k == "session_ttl" {
                        c.session_ttl = d.max(Duration::from_secs(10));
                    } else {
                        c.healthy_timeout = d;
                    }
                }
                _ => return Err(format!("[coordination]: unknown key {k:?}")),
            }
        }
        Ok(c)
    }
}

#[derive(Debug)]
pub enum CoordinationError {
    Consul(ConsulError),
    /// The group's slots are taken (by these nodes).
    Busy {
        holders: Vec<String>,
        limit: u32,
    },
    /// The node is in the middle of a rebootmgr reboot.
    RebootInProgress,
    /// The node's checks did not pass within the timeout.
    Unhealthy(Vec<String>),
    /// This node is a voting Consul server whose reboot would cost the Raft
    /// quorum (see `health::evaluate_quorum`).
    QuorumAtRisk(Vec<String>),
    /// Node maintenance was set, but the agent shows another reason (or
    /// none): the caller retries.
    MaintenanceNotSet {
        reason: String,
        shows: Option<String>,
    },
}

impl fmt::Display for CoordinationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoordinationError::Consul(e) => write!(f, "{e}"),
            CoordinationError::Busy { holders, limit } => {
                write!(
                    f,
                    "all {limit} maintenance slot(s) of the group are taken by {}",
                    holders.join(", ")
                )
            }
            CoordinationError::RebootInProgress => write!(f, "rebootmgr is rebooting this node"),
            CoordinationError::Unhealthy(b) => write!(f, "checks still failing: {}", b.join("; ")),
            CoordinationError::QuorumAtRisk(b) => write!(f, "{}", b.join("; ")),
            CoordinationError::MaintenanceNotSet { reason, shows } => match shows {
                Some(s) => write!(
                    f,
                    "node maintenance set with reason {reason:?}, but the agent shows {s:?}"
                ),
                None => write!(
                    f,
                    "node maintenance set with reason {reason:?}, but the agent shows none"
                ),
            },
        }
    }
}

impl std::error::Error for CoordinationError {}

impl From<ConsulError> for CoordinationError {
    fn from(e: ConsulError) -> Self {
        CoordinationError::Consul(e)
    }
}

fn setup(cfg: &CoordinationConfig, node: &str) -> Result<(Consul, Keys), CoordinationError> {
    let c = Consul::from_env(cfg.consul.as_deref())?;
    let keys = crate::protocol::node_keys(&c, node, cfg.group.as_deref())?;
    Ok((c, keys))
}

/// Takes a slot of the group and sets Consul node maintenance (reason names
/// umm). Idempotent: entering twice keeps the one slot.
pub fn enter_maintenance(cfg: &CoordinationConfig, node: &str) -> Result<(), CoordinationError> {
    let (c, keys) = setup(cfg, node)?;
    if let Some(e) = c.kv_get(&keys.marker())? {
        let m = Marker::parse(&e.value_str());
        if m.owner == MarkerOwner::Rebootmgr {
            let this_boot = umm_core::state::read_boot_id(&umm_core::paths::Root::from_env());
            if m.boot_id.is_some() && m.boot_id == this_boot {
                // `rebootmgr run --into-maintenance` reboots through `umm on`:
                // rebootmgr's slot and maintenance cover the maintenance boot.
                return Ok(());
            }
            return Err(CoordinationError::RebootInProgress);
        }
    }
    let quorum = health::check_quorum(&c, node)?;
    if !quorum.is_empty() {
        return Err(CoordinationError::QuorumAtRisk(quorum));
    }
    take_slot(&c, &keys, cfg, node)?;
    if let Err(e) = c.set_node_maintenance(node, true, &format!("umm: maintenance mode on {node}"))
    {
        let _ = c.kv_delete(&keys.marker());
        let _ = Semaphore::for_keys(&keys, cfg.max_parallel).release(&c, node);
        return Err(e.into());
    }
    Ok(())
}

/// The Consul user event fired when a maintenance boot is announced.
pub const MAINTENANCE_EVENT: &str = "umm-maintenance";

/// A maintenance boot that nobody asked for through `umm on` (`umm=1` on the
/// kernel command line, a reboot loop) is announced all the same: Consul node
/// maintenance with `reason` is set first, whatever happens to the slot, then
/// the group's slot is taken. A node that rebootmgr is rebooting keeps
/// rebootmgr's slot (its marker) and only gets the new reason. Errors (the
/// group's slot held by another node, Consul not reachable yet) are for the
/// caller to retry; the maintenance stays set.
pub fn announce_maintenance(
    cfg: &CoordinationConfig,
    node: &str,
    reason: &str,
) -> Result<(), CoordinationError> {
    let (c, keys) = setup(cfg, node)?;
    let current = c.node_maintenance_reason(node)?;
    if current.as_deref() != Some(reason) {
        if current.is_some() {
            // Consul keeps the first reason of a node already in maintenance:
            // off and on again (a moment apart) to give it the new one.
            c.set_node_maintenance(node, false, "")?;
        }
        c.set_node_maintenance(node, true, reason)?;
        let now = c.node_maintenance_reason(node)?;
        if now.as_deref() != Some(reason) {
            return Err(CoordinationError::MaintenanceNotSet {
                reason: reason.to_string(),
                shows: now,
            });
        }
        // The notification (`consul watch -type event -name umm-maintenance`).
        let payload = serde_json::json!({"node": node, "reason": reason}).to_string();
        if let Err(e) = c.event_fire(MAINTENANCE_EVENT, &payload) {
            log::warn!("firing the Consul event {MAINTENANCE_EVENT}: {e}");
        }
    }
    if let Some(e) = c.kv_get(&keys.marker())? {
        if Marker::parse(&e.value_str()).owner == MarkerOwner::Rebootmgr {
            return Ok(());
        }
    }
    take_slot(&c, &keys, cfg, node)
}

/// A slot of the group, kept by an `umm` marker (so it survives reboots and
/// the session). Idempotent: a node that holds one keeps it.
fn take_slot(
    c: &Consul,
    keys: &Keys,
    cfg: &CoordinationConfig,
    node: &str,
) -> Result<(), CoordinationError> {
    let sem = Semaphore::for_keys(keys, cfg.max_parallel);
    let session = Session::create(c, &format!("umm {node}"), cfg.session_ttl)?;
    if let Acquire::Busy { holders, limit } = sem.try_acquire(c, node, &session.id)? {
        return Err(CoordinationError::Busy { holders, limit });
    }
    let marker = Marker {
        owner: MarkerOwner::Umm,
        boot_id: None,
        since: umm_core::fsutil::now_unix(),
        group: keys.group.clone(),
    };
    if let Err(e) = c.kv_put(&keys.marker(), &marker.to_json()) {
        let _ = sem.release(c, node);
        return Err(e.into());
    }
    // The marker keeps the slot from here on; the session may go.
    drop(session);
    Ok(())
}

/// Waits (up to `healthy_timeout`) until this node's own checks of services
/// tagged `rebootmgr` pass, then ends node maintenance and frees the slot.
pub fn leave_maintenance(cfg: &CoordinationConfig, node: &str) -> Result<(), CoordinationError> {
    let (c, keys) = setup(cfg, node)?;
    let deadline = umm_core::duration::deadline(Instant::now(), cfg.healthy_timeout);
    loop {
        let failing = health::check_own_services(&c, node, &[TAG])?;
        if failing.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            return Err(CoordinationError::Unhealthy(failing));
        }
        log::info!("waiting for this node's checks: {}", failing.join("; "));
        std::thread::sleep(
            cfg.poll
                .min(deadline.saturating_duration_since(Instant::now())),
        );
    }
    let marker = c.kv_get(&keys.marker())?;
    if let Some(e) = &marker {
        if Marker::parse(&e.value_str()).owner == MarkerOwner::Rebootmgr {
            // A node that rebootmgr rebooted (and that then fell into MM, a
            // reboot loop): its slot and maintenance are rebootmgr's, ended
            // by its post-boot phase after the health gate.
            return Ok(());
        }
    }
    c.set_node_maintenance(node, false, "")?;
    if marker.is_some() {
        c.kv_delete(&keys.marker())?;
    }
    Semaphore::for_keys(&keys, cfg.max_parallel).release(&c, node)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    #[test]
    fn reads_the_coordination_table() {
        let c = CoordinationConfig::from_table(&table(
            "consul = \"http://10.0.0.1:8500\"\ngroup = \"ctl\"\nmax_parallel = 2\nsession_ttl = \"30s\"\nhealthy_timeout = \"5min\"",
        ))
        .unwrap();
        assert_eq!(c.consul.as_deref(), Some("http://10.0.0.1:8500"));
        assert_eq!(c.group.as_deref(), Some("ctl"));
        assert_eq!(c.max_parallel, 2);
        assert_eq!(c.session_ttl, Duration::from_secs(30));
        assert_eq!(c.healthy_timeout, Duration::from_secs(300));
        let d = CoordinationConfig::from_table(&table("")).unwrap();
        assert_eq!(d.max_parallel, 1);
        assert!(d.consul.is_none());
    }

    #[test]
    fn bad_keys_are_named() {
        for (text, want) in [
            ("max_parallel = 0", "max_parallel"),
            ("session_ttl = 60", "session_ttl"),
            ("healthy_timeout = \"600\"", "healthy_timeout"),
            ("grup = \"x\"", "grup"),
            ("consul = 1", "consul"),
        ] {
            let e = CoordinationConfig::from_table(&table(text)).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    /// Issue 10 finding 10: this duration parsed, and `leave_maintenance`'s
    /// deadline (`Instant::now() + healthy_timeout`) panicked.
    #[test]
    fn huge_healthy_timeout_is_a_clear_error() {
        let e = CoordinationConfig::from_table(&table("healthy_timeout = \"20000000000000w\""))
            .unwrap_err();
        assert!(
            e.contains("healthy_timeout") && e.contains("longer than 3650d"),
            "{e}"
        );
    }

    /// Issue 10 finding 9: errors name the key and the expected type, never
    /// the value (the config may be a link to a secret).
    #[test]
    fn errors_do_not_echo_values() {
        for text in [
            "consul = [\"s3cr3t\"]",
            "max_parallel = \"s3cr3t\"",
            "healthy_timeout = \"s3cr3t\"",
        ] {
            let e = CoordinationConfig::from_table(&table(text)).unwrap_err();
            assert!(!e.contains("s3cr3t"), "{text}: {e}");
        }
    }
}
