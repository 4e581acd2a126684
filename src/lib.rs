//! umm: the `umm` command. Maintenance mode reached by pausing the boot: the
//! operator's commands (`cli`), the boot steps that run in a paused boot
//! (`boot`), the init-system backends (`systemd` over D-Bus, `sysv` for
//! sysvinit and upstart), the pre-transition hooks (`hooks`) and GRUB's
//! environment block (`grub`).
//!
//! Decision, config and state live in `umm_core` (shared with the generator);
//! the Consul protocol in `umm_coord` (shared with rebootmgr).

pub mod boot;
pub mod cli;
pub mod grub;
pub mod hooks;
pub mod systemd;
pub mod sysv;
