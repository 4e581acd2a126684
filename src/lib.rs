//! umm: the `umm` command. Maintenance mode reached by pausing the boot: the
//! operator's commands (`cli`), the boot steps that run in a paused boot
//! (`boot`), the init-system backends (`systemd` over D-Bus, `sysv` for
//! sysvinit and upstart) and the pre-transition hooks (`hooks`).
//!
//! Decision, config and state live in `umm_core` (shared with the generator);
//! the Consul protocol in `umm_coord` (shared with rebootmgr).

pub mod boot;
pub mod cli;
pub mod hooks;
pub mod systemd;
pub mod sysv;
