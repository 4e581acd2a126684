//! umm: one maintenance mode for Linux servers, reached by pausing the boot,
//! and Consul-coordinated reboots across a cluster (rebootmgr).
//!
//! The library holds everything that decides; the binaries only dispatch.
//! Modules used by the generator/PID-1 shim must stay free of D-Bus, HTTP and
//! threads: those live behind the `cli` feature.

pub mod boot;
#[cfg(feature = "cli")]
pub mod cli;
pub mod cmdline;
pub mod config;
pub mod decision;
pub mod duration;
pub mod fsutil;
pub mod hooks;
pub mod inputs;
pub mod kmsg;
pub mod paths;
pub mod perms;
pub mod state;
#[cfg(feature = "cli")]
pub mod systemd;
pub mod sysv;
pub mod tasks;

#[cfg(feature = "cli")]
pub mod consul;
#[cfg(feature = "cli")]
pub mod rebootmgr;
