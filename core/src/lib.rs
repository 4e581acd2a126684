//! umm-core: what decides and what persists, for every entry point of umm
//! (the systemd generator, the PID-1 pre-stage, the initramfs hook, the CLI).
//!
//! The decision is pure (`decision::decide`), its inputs are gathered in one
//! place (`inputs::gather`), every path goes through `paths::Root`, and every
//! file is read through `fsutil`. This crate must stay free of D-Bus, HTTP,
//! argument parsing and JSON: the generator links it alone.

pub mod cmdline;
pub mod config;
pub mod decision;
pub mod duration;
pub mod fsutil;
pub mod inputs;
pub mod logger;
pub mod metrics;
pub mod paths;
pub mod perms;
pub mod state;
pub mod tasks;
