//! "Is a reboot required": the trigger files on this node, then the node's
//! `reboot_required` key. The one place that answers it (`run --check-triggers`
//! and `status`).

use crate::local::TRIGGER_FILES;
use umm_coord::consul::{Consul, ConsulError};
use umm_coord::protocol::{Keys, REBOOT_REQUIRED};
use umm_core::paths::Root;

/// What asks for the reboot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    File(&'static str),
    /// The node's `reboot_required` key (its full name).
    Key(String),
}

impl Trigger {
    /// As `run` logs it.
    pub fn describe(&self) -> String {
        match self {
            Trigger::File(f) => format!("file {f} exists"),
            Trigger::Key(k) => format!("key {k} exists"),
        }
    }

    /// As `status` shows it: the key by its leaf name.
    pub fn describe_short(&self) -> String {
        match self {
            Trigger::File(_) => self.describe(),
            Trigger::Key(_) => format!("key {REBOOT_REQUIRED} exists"),
        }
    }
}

/// The first trigger that asks for a reboot, files first.
pub fn reboot_required(
    c: &Consul,
    root: &Root,
    keys: &Keys,
) -> Result<Option<Trigger>, ConsulError> {
    if let Some(f) = TRIGGER_FILES.into_iter().find(|f| root.path(f).exists()) {
        return Ok(Some(Trigger::File(f)));
    }
    let key = keys.reboot_required();
    Ok(c.kv_get(&key)?.map(|_| Trigger::Key(key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_names_the_key_status_its_leaf() {
        let k = Trigger::Key(Keys::new("n1", None).reboot_required());
        assert_eq!(
            k.describe(),
            "key service/rebootmgr/nodes/n1/reboot_required exists"
        );
        assert_eq!(k.describe_short(), "key reboot_required exists");
        let f = Trigger::File(TRIGGER_FILES[0]);
        assert_eq!(f.describe(), "file /var/run/reboot-required exists");
        assert_eq!(f.describe_short(), f.describe());
    }
}
