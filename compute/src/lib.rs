//! Compute-host maintenance on OpenStack Nova (docs/compute-host.md): the
//! drain engine, its per-host state, and a small Nova REST client. Used by
//! `umm host …` (module [`cli`]) and meant for rebootmgr's pre/post-boot tasks.

pub mod cli;
pub mod clouds;
pub mod drain;
pub mod nova;
pub mod state;
