//! Files on this node that rebootmgr reads or holds (not Consul keys: those
//! are in `umm_coord::protocol`).

/// Debian's reboot-required flag, and the Python tool's spelling.
pub const TRIGGER_FILES: [&str; 2] = ["/var/run/reboot-required", "/var/run/reboot_required"];
pub const PRE_BOOT_TASKS: &str = "/etc/rebootmgr/pre_boot_tasks";
pub const POST_BOOT_TASKS: &str = "/etc/rebootmgr/post_boot_tasks";
pub const INSTANCE_LOCK: &str = "/run/rebootmgr.lock";
