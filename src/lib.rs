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
pub mod metrics;
pub mod systemd;
pub mod sysv;

/// `println!` that never panics: a closed stdout (`umm on | head -1`, a
/// journal that went away) must not abort a command half-way; what it
/// prints is information, what it does is the job.
#[macro_export]
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// `eprintln!` that never panics (see [`outln!`]).
#[macro_export]
macro_rules! errln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}
