//! umm-coord: the Consul coordination protocol that `umm` and `rebootmgr`
//! share (docs/rebootmgr.md, "Consul layout").
//!
//! - `consul`: the HTTP client (KV, sessions, catalog, health, node maintenance);
//! - `tls`: how to reach Consul (HTTPS, CA, client certificate, ACL token; Consul's env variables);
//! - `protocol`: the KV layout (keys, tags, node config, the per-node marker);
//! - `lock`: the semaphore that gives N reboot slots per group;
//! - `health`: the rules that say whether the cluster may lose this node now;
//! - `coordination`: umm's side (`[coordination]`): take a slot and node
//!   maintenance around maintenance mode, give both back after.

pub mod consul;
pub mod coordination;
pub mod health;
pub mod lock;
pub mod protocol;
pub mod tls;
