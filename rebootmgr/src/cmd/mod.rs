//! One module per subcommand, each with a `run()` that returns what to print
//! (main.rs prints it and turns an [`Abort`] into the exit code).

pub mod config;
pub mod release;
pub mod run;
pub mod status;
pub mod stop;

use crate::exit::Abort;
use umm_coord::consul::Consul;

/// `--node`, else the local Consul agent's node name.
pub fn node_name(c: &Consul, node: Option<String>) -> Result<String, Abort> {
    match node {
        Some(n) if !n.is_empty() => Ok(n),
        _ => Ok(c.agent_node_name()?),
    }
}
