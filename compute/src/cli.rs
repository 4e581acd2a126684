//! `umm host …`: the compute-host drain on the command line (umm(8),
//! docs/compute-host.md). Exit status: 0 done, 1 failed (mode error, Nova
//! unreachable), 2 bad usage, 3 refused in the current state (another run
//! holds the host, nothing to retry, drain not finished).

use crate::drain::{Drain, DrainError, OnTimeout, Policy, Selection, Shutoff};
use crate::nova::Nova;
use crate::state::{self, check_host, Store};
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::PathBuf;
use umm_core::paths::Root;

#[derive(Subcommand, Debug)]
pub enum HostCmd {
    /// Disable the host's nova-compute, live-migrate its servers, wait until it stays empty.
    Enter {
        host: String,
        /// Why (goes into the service's disabled_reason "umm:<time>:<why>").
        #[arg(long, default_value = "maintenance")]
        why: String,
        #[command(flatten)]
        policy: PolicyArgs,
        /// Print the plan and change nothing (neither Nova nor the state).
        #[arg(long)]
        dry_run: bool,
        /// Drain even if the capacity precheck says the servers do not fit elsewhere.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Re-enable the host's nova-compute, but only a disable that is umm's own.
    Leave {
        host: String,
        #[command(flatten)]
        common: Common,
    },
    /// After mode error: try the failed servers again and continue the drain
    /// (policy options given here replace the drain's).
    Retry {
        host: String,
        #[command(flatten)]
        policy: PolicyArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Stop a drain: cancel its migrations in flight; the host stays disabled (mode error).
    Abort {
        host: String,
        #[command(flatten)]
        common: Common,
    },
    /// Show the drain state of one host or of every host umm has drained.
    Status {
        host: Option<String>,
        /// Machine-readable output (the state files' JSON, in a list).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Args, Debug)]
pub struct Common {
    /// Drain state directory (default /var/lib/umm/compute under UMM_ROOT).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct PolicyArgs {
    /// Which servers to move: active (live-migrate ACTIVE ones; the host must end empty) or none.
    #[arg(long, value_enum)]
    pub servers: Option<Selection>,
    /// Live migrations in flight from this host at once [default: 2].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub max_in_flight: Option<u32>,
    /// Per-migration timeout [default: 10m].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub migration_timeout: Option<u64>,
    /// At the per-migration timeout: abort or force-complete [default: abort].
    #[arg(long, value_enum)]
    pub on_timeout: Option<OnTimeout>,
    /// Overall deadline; at it the drain fails and the host stays disabled [default: 1h].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub deadline: Option<u64>,
    /// Extra attempts per server after a failed migration [default: 1].
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// How long the host must stay empty [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub settle: Option<u64>,
    /// Poll interval [default: 2s].
    #[arg(long, value_name = "DURATION", value_parser = duration_ms)]
    pub poll: Option<u64>,
    /// Migrations in flight across all hosts at once, from Nova's records [default: none].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_total: Option<u32>,
    /// SHUTOFF servers: migrate (cold migration + confirm) or leave them on the host [default: migrate].
    #[arg(long, value_enum)]
    pub shutoff: Option<Shutoff>,
}

fn duration(s: &str) -> Result<u64, String> {
    umm_core::duration::parse(s).map(|d| d.as_secs())
}

/// A duration, or milliseconds as `500ms`.
fn duration_ms(s: &str) -> Result<u64, String> {
    let ms = match s.trim().strip_suffix("ms") {
        Some(n) => n
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("{s:?}: milliseconds must be a whole number, e.g. 500ms"))?,
        None => umm_core::duration::parse(s)?.as_millis() as u64,
    };
    if ms == 0 {
        return Err("the poll interval must be more than 0".into());
    }
    Ok(ms)
}

impl PolicyArgs {
    /// The defaults with the options given.
    pub fn policy(&self) -> Policy {
        self.apply(Policy::default())
    }

    /// `base` with the options given.
    pub fn apply(&self, d: Policy) -> Policy {
        Policy {
            servers: self.servers.unwrap_or(d.servers),
            max_in_flight: self.max_in_flight.unwrap_or(d.max_in_flight),
            migration_timeout: self.migration_timeout.unwrap_or(d.migration_timeout),
            on_timeout: self.on_timeout.unwrap_or(d.on_timeout),
            deadline: self.deadline.unwrap_or(d.deadline),
            retries: self.retries.unwrap_or(d.retries),
            settle: self.settle.unwrap_or(d.settle),
            poll_ms: self.poll.unwrap_or(d.poll_ms),
            max_total: self.max_total.or(d.max_total),
            shutoff: self.shutoff.unwrap_or(d.shutoff),
        }
    }
}

/// Exit status and message of a failed command.
pub struct Failure {
    pub exit: i32,
    pub message: String,
}

fn fail(exit: i32, message: impl Into<String>) -> Failure {
    Failure {
        exit,
        message: message.into(),
    }
}

fn from_drain(e: DrainError) -> Failure {
    let exit = match e {
        DrainError::Busy(_) => 3,
        DrainError::Local(_) => 3,
        DrainError::Nova(_) | DrainError::Failed(_) | DrainError::Refused(_) => 1,
    };
    fail(exit, e.to_string())
}

pub fn run(root: &Root, cmd: HostCmd) -> Result<i32, Failure> {
    let (host, common) = match &cmd {
        HostCmd::Enter { host, common, .. }
        | HostCmd::Leave { host, common }
        | HostCmd::Retry { host, common, .. }
        | HostCmd::Abort { host, common } => (Some(host.clone()), common),
        HostCmd::Status { host, common, .. } => (host.clone(), common),
    };
    if let Some(h) = &host {
        check_host(h).map_err(|m| fail(2, m))?;
    }
    let store = match &common.state_dir {
        // given on the command line: a path of the running system, not under UMM_ROOT
        Some(d) => Store::new(
            &Root::default(),
            std::path::absolute(d)
                .map_err(|e| fail(2, format!("--state-dir {}: {e}", d.display())))?,
        ),
        None => Store::new(root, state::DEFAULT_STATE_DIR),
    };
    if let HostCmd::Status { json, .. } = &cmd {
        return status(&store, host.as_deref(), *json);
    }
    let host = host.unwrap_or_default();
    let auth = crate::clouds::auth(root).map_err(|e| fail(1, e))?;
    let nova = Nova::connect(&auth).map_err(|e| fail(1, e.to_string()))?;
    let mut out = |s: &str| println!("{s}");
    let mut d = Drain {
        nova: &nova,
        store: &store,
        out: &mut out,
    };
    let st = match cmd {
        HostCmd::Enter {
            why,
            policy,
            dry_run,
            force,
            ..
        } => {
            let policy = policy.policy();
            if dry_run {
                let plan = d.plan(&host, &policy).map_err(from_drain)?;
                println!("dry run (nothing changed):\n{plan}");
                return Ok(0);
            }
            if why.contains(['\n', '\r']) {
                return Err(fail(2, "--why must be one line"));
            }
            d.enter(&host, &why, &policy, force)
        }
        HostCmd::Leave { .. } => d.leave(&host),
        HostCmd::Retry { policy, .. } => d.retry(&host, &|p| policy.apply(p)),
        HostCmd::Abort { .. } => d.abort(&host),
        HostCmd::Status { .. } => unreachable!(),
    }
    .map_err(from_drain)?;
    println!("{}: mode {}", st.host, st.mode.as_str());
    Ok(0)
}

fn status(store: &Store, host: Option<&str>, as_json: bool) -> Result<i32, Failure> {
    let hosts = match host {
        Some(h) => vec![h.to_string()],
        None => store
            .hosts()
            .map_err(|e| fail(1, format!("cannot list {}: {e}", store.dir().display())))?,
    };
    let mut states = Vec::new();
    for h in &hosts {
        match store.load(h).map_err(|m| fail(1, m))? {
            Some(st) => states.push(st),
            None if host.is_some() => {
                if as_json {
                    println!(
                        "{}",
                        json!([{"host": h, "mode": "active", "requested": "active", "servers": []}])
                    );
                } else {
                    println!("{h}: active (umm has no drain state for it)");
                }
                return Ok(0);
            }
            None => {}
        }
    }
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&states).unwrap_or_default()
        );
        return Ok(0);
    }
    if states.is_empty() {
        println!("no compute host drained by umm ({})", store.dir().display());
    }
    for st in &states {
        let c = |s| st.count(s);
        use crate::state::Step::*;
        println!(
            "{}: {} (requested {:?}) since {}: {} done, {} migrating, {} pending, {} failed, {} skipped",
            st.host,
            st.mode.as_str(),
            st.requested,
            crate::drain::rfc3339(st.started),
            c(Done),
            c(Migrating),
            c(Pending),
            c(Failed),
            c(Skipped)
        );
        if let Some(e) = &st.error {
            println!("  error: {e}");
        }
        for p in st.servers.iter().filter(|p| p.step == Failed) {
            println!(
                "  failed {} {}: {}",
                p.id,
                p.name,
                p.fault.as_deref().unwrap_or("?")
            );
        }
    }
    Ok(0)
}
