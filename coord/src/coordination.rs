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
            let bad = |want: &str| format!("[coordination] {k}: expected {want}, got {v}");
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
    let c = Consul::from_env(cfg.consul.as_deref());
    let keys = crate::protocol::node_keys(&c, node, cfg.group.as_deref())?;
    Ok((c, keys))
}

/// Takes a slot of the group and sets Consul node maintenance (reason names
/// umm). Idempotent: entering twice keeps the one slot.
pub fn enter_maintenance(cfg: &CoordinationConfig, node: &str) -> Result<(), CoordinationError> {
    let (c, keys) = setup(cfg, node)?;
    if let Some(e) = c.kv_get(&keys.marker())? {
        if Marker::parse(&e.value_str()).owner == MarkerOwner::Rebootmgr {
            return Err(CoordinationError::RebootInProgress);
        }
    }
    let quorum = health::check_quorum(&c, node)?;
    if !quorum.is_empty() {
        return Err(CoordinationError::QuorumAtRisk(quorum));
    }
    let sem = Semaphore::for_keys(&keys, cfg.max_parallel);
    let session = Session::create(&c, &format!("umm {node}"), cfg.session_ttl)?;
    match sem.try_acquire(&c, node, &session.id)? {
        Acquire::Acquired => {}
        Acquire::Busy { holders, limit } => return Err(CoordinationError::Busy { holders, limit }),
    }
    let marker = Marker {
        owner: MarkerOwner::Umm,
        boot_id: None,
        since: umm_core::fsutil::now_unix(),
        group: keys.group.clone(),
    };
    let done = c.kv_put(&keys.marker(), &marker.to_json()).and_then(|_| {
        c.set_node_maintenance(node, true, &format!("umm: maintenance mode on {node}"))
    });
    if let Err(e) = done {
        let _ = c.kv_delete(&keys.marker());
        let _ = sem.release(&c, node);
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
    let deadline = Instant::now() + cfg.healthy_timeout;
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
    c.set_node_maintenance(node, false, "")?;
    if let Some(e) = c.kv_get(&keys.marker())? {
        if Marker::parse(&e.value_str()).owner == MarkerOwner::Umm {
            c.kv_delete(&keys.marker())?;
        }
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
}
