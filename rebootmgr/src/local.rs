//! Files on this node that rebootmgr reads or holds (not Consul keys: those
//! are in `umm_coord::protocol`).

/// Debian's reboot-required flag, the Python tool's spelling, and SUSE's
/// (zypper and transactional-update write `/run/reboot-needed`).
pub const TRIGGER_FILES: [&str; 3] = [
    "/var/run/reboot-required",
    "/var/run/reboot_required",
    "/run/reboot-needed",
];
pub const PRE_BOOT_TASKS: &str = "/etc/rebootmgr/pre_boot_tasks";
pub const POST_BOOT_TASKS: &str = "/etc/rebootmgr/post_boot_tasks";
pub const INSTANCE_LOCK: &str = "/run/rebootmgr.lock";
/// The holiday calendar `--check-holidays` reads (one `YYYY-MM-DD` a line).
pub const HOLIDAYS: &str = "/etc/rebootmgr/holidays";
