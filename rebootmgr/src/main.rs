//! rebootmgr: reboot this node when it needs it and the cluster allows it.
//! Only argument parsing and dispatch live here.

mod exit;
mod flow;
mod local;
mod status;

use clap::{Args, Parser, Subcommand};
use exit::{Abort, Exit};
use flow::{Done, Reboot, Settings};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use umm_coord::consul::Consul;
use umm_coord::protocol::{self as rebootmgr, Keys, NodeConfig};
use umm_core::fsutil;
use umm_core::paths::Root;

#[derive(Parser, Debug)]
#[command(name = "rebootmgr", version, about = "Consul-coordinated reboots")]
struct Cli {
    /// Consul HTTP address [env: CONSUL_HTTP_ADDR] [default: http://127.0.0.1:8500]
    #[arg(long, global = true)]
    consul: Option<String>,
    /// This node's name [default: the Consul agent's node name]
    #[arg(long, global = true)]
    node: Option<String>,
    /// More output (-v info, -vv debug)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Reboot if needed and allowed (the default when no command is given)
    Run(RunArgs),
    /// Show stop flags, lock holders, reboots in progress and blocking checks
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Set a stop flag (global unless --group or --node-flag)
    Stop {
        #[arg(long, conflicts_with = "node_flag")]
        group: Option<String>,
        /// The flag of this node (--node) only
        #[arg(long)]
        node_flag: bool,
        /// Reason, stored as the flag's value
        reason: Vec<String>,
    },
    /// Clear a stop flag (global unless --group or --node-flag)
    Unstop {
        #[arg(long, conflicts_with = "node_flag")]
        group: Option<String>,
        #[arg(long)]
        node_flag: bool,
    },
    /// Operator override: free the slot and reboot markers of --node (a node
    /// that went down for its reboot and will not come back). Its Consul
    /// maintenance is left as it is.
    Release {
        /// Group of the node's slot [default: the group in its config]
        #[arg(long)]
        group: Option<String>,
    },
    /// Show or change this node's config (service/rebootmgr/nodes/<node>/config)
    Config {
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
        #[arg(long)]
        message: Option<String>,
        #[arg(long, conflicts_with = "no_group")]
        group: Option<String>,
        #[arg(long)]
        no_group: bool,
        /// Create an enabled config only if none exists
        #[arg(long)]
        ensure: bool,
    },
}

#[derive(Args, Debug, Clone)]
struct RunArgs {
    /// Reboot only when a trigger asks for it (timer mode)
    #[arg(long)]
    check_triggers: bool,
    /// Do everything except markers, maintenance and the reboot
    #[arg(long)]
    dry_run: bool,
    /// Group (overrides the node config's group)
    #[arg(long)]
    group: Option<String>,
    /// Seconds to wait after the pre-boot tasks before re-checking
    #[arg(long, default_value_t = 130)]
    settle: u64,
    /// Nodes of the group allowed to reboot at once
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    max_parallel: u32,
    /// Consul session TTL in seconds (min 10)
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(10..))]
    session_ttl: u64,
    /// Per-task timeout in seconds
    #[arg(long, default_value_t = 7200)]
    task_timeout: u64,
    /// After boot, wait up to this many seconds for checks to pass
    #[arg(long)]
    wait_until_healthy: Option<u64>,
    /// Command that reboots [default: systemctl reboot]
    #[arg(long, num_args = 1.., allow_hyphen_values = true)]
    reboot_command: Option<Vec<String>>,
    /// How often stop flags are polled during waits and tasks, in ms
    #[arg(long, default_value_t = 1000)]
    poll_ms: u64,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                Exit::Usage.code() as u8
            } else {
                0
            });
        }
    };
    let level = match cli.verbose {
        0 => log::LevelFilter::Warn,
        1 => log::LevelFilter::Info,
        _ => log::LevelFilter::Debug,
    };
    let level = if std::env::var_os("REBOOTMGR_LOG_INFO").is_some() {
        level.max(log::LevelFilter::Info)
    } else {
        level
    };
    umm_core::logger::init("rebootmgr", umm_core::logger::Sink::Stderr, level);
    match dispatch(cli) {
        Ok(msg) => {
            if !msg.is_empty() {
                println!("{msg}");
            }
            ExitCode::from(Exit::Ok.code() as u8)
        }
        Err(a) => {
            eprintln!("rebootmgr: {a}");
            ExitCode::from(a.exit.code() as u8)
        }
    }
}

fn node_name(c: &Consul, node: Option<String>) -> Result<String, Abort> {
    match node {
        Some(n) if !n.is_empty() => Ok(n),
        _ => Ok(c.agent_node_name()?),
    }
}

fn dispatch(cli: Cli) -> Result<String, Abort> {
    let c = Consul::from_env(cli.consul.as_deref());
    match cli.cmd {
        None => run(&c, cli.node, cli.run),
        Some(Cmd::Run(args)) => run(&c, cli.node, args),
        Some(Cmd::Status { json }) => {
            let node = node_name(&c, cli.node)?;
            let root = Root::from_env();
            let trig = local::TRIGGER_FILES
                .iter()
                .find(|f| root.path(f).exists())
                .map(|f| format!("file {f} exists"));
            let trig = match trig {
                Some(t) => Some(t),
                None => c
                    .kv_get(&rebootmgr::node_key(&node, "reboot_required"))?
                    .map(|_| "key reboot_required exists".to_string()),
            };
            let v = status::gather(&c, &node, trig)?;
            Ok(if json {
                serde_json::to_string_pretty(&v).unwrap_or_default()
            } else {
                status::render_text(&v).trim_end().to_string()
            })
        }
        Some(Cmd::Stop {
            group,
            node_flag,
            reason,
        }) => {
            let key = flag_key(&c, cli.node, group, node_flag)?;
            let reason = if reason.is_empty() {
                "stopped by an operator".to_string()
            } else {
                reason.join(" ")
            };
            c.kv_put(&key, &reason)?;
            Ok(format!("set {key}"))
        }
        Some(Cmd::Unstop { group, node_flag }) => {
            let key = flag_key(&c, cli.node, group, node_flag)?;
            c.kv_delete(&key)?;
            Ok(format!("cleared {key}"))
        }
        Some(Cmd::Release { group }) => {
            let node = cli
                .node
                .filter(|n| !n.is_empty())
                .ok_or_else(|| Abort::new(Exit::Usage, "release needs --node NAME"))?;
            let group = match group {
                Some(g) => Some(g),
                None => rebootmgr::read_node_config(&c, &node)?
                    .and_then(Result::ok)
                    .and_then(|cfg| cfg.group),
            };
            let keys = Keys::new(&node, group.as_deref());
            rebootmgr::delete_reboot_markers(&c, &keys, &node)?;
            // The limit only matters when taking a slot.
            umm_coord::lock::Semaphore::for_keys(&keys, 1).release(&c, &node)?;
            Ok(format!(
                "released the slot of {node} in {} and its reboot markers",
                keys.lock_prefix()
            ))
        }
        Some(Cmd::Config {
            enable,
            disable,
            message,
            group,
            no_group,
            ensure,
        }) => {
            let node = node_name(&c, cli.node)?;
            let keys = Keys::new(&node, None);
            let current = rebootmgr::read_node_config(&c, &node)?;
            let mut cfg = match (&current, ensure) {
                (Some(Ok(_)), true) => return Ok(format!("{} exists", keys.config())),
                (Some(Ok(cfg)), false) => cfg.clone(),
                (_, true) => NodeConfig {
                    enabled: true,
                    ..Default::default()
                },
                (None, false) => NodeConfig::default(),
                (Some(Err(e)), false)
                    if !(enable || disable || group.is_some() || no_group || message.is_some()) =>
                {
                    return Err(Abort::new(
                        Exit::NotConfigured,
                        format!("{}: {e}", keys.config()),
                    ))
                }
                (Some(Err(_)), false) => NodeConfig::default(),
            };
            let changing =
                enable || disable || message.is_some() || group.is_some() || no_group || ensure;
            if !changing {
                return Ok(match current {
                    Some(Ok(c)) => c.to_json(),
                    _ => format!("{} is missing (reboots not allowed)", keys.config()),
                });
            }
            if enable {
                cfg.enabled = true;
            }
            if disable {
                cfg.enabled = false;
            }
            if let Some(m) = message {
                cfg.message = m;
            }
            if let Some(g) = group {
                cfg.group = Some(g).filter(|g| !g.is_empty());
            }
            if no_group {
                cfg.group = None;
            }
            c.kv_put(&keys.config(), &cfg.to_json())?;
            Ok(cfg.to_json())
        }
    }
}

fn flag_key(
    c: &Consul,
    node: Option<String>,
    group: Option<String>,
    node_flag: bool,
) -> Result<String, Abort> {
    Ok(if node_flag {
        Keys::new(&node_name(c, node)?, None).node_stop()
    } else if let Some(g) = group {
        Keys::new("", Some(&g))
            .group_stop()
            .ok_or_else(|| Abort::new(Exit::Usage, "empty group name"))?
    } else {
        rebootmgr::GLOBAL_STOP.to_string()
    })
}

/// Holds `/run/rebootmgr.lock` (flock) for the life of the process.
fn single_instance(root: &Root) -> Result<fsutil::Lock, Abort> {
    let path = root.path(local::INSTANCE_LOCK);
    fsutil::lock_exclusive(&path, fsutil::Wait::No).map_err(|e| match e {
        fsutil::LockError::Busy => Abort::new(
            Exit::AlreadyRunning,
            format!("another rebootmgr holds {}", path.display()),
        ),
        fsutil::LockError::Io(e) => Abort::new(Exit::Error, format!("{}: {e}", path.display())),
    })
}

fn run(c: &Consul, node: Option<String>, a: RunArgs) -> Result<String, Abort> {
    let root = Root::from_env();
    let _instance = single_instance(&root)?;
    let node = node_name(c, node)?;
    let mut s = Settings::new(&node);
    s.root = root;
    s.group = a.group;
    s.check_triggers = a.check_triggers;
    s.dry_run = a.dry_run;
    s.settle = Duration::from_secs(a.settle);
    s.max_parallel = a.max_parallel;
    s.session_ttl = Duration::from_secs(a.session_ttl);
    s.task_timeout = Duration::from_secs(a.task_timeout);
    s.wait_until_healthy = a.wait_until_healthy.map(Duration::from_secs);
    s.poll = Duration::from_millis(a.poll_ms.max(50));
    s.reboot = match (
        std::env::var_os("REBOOTMGR_REBOOT_RECORD"),
        a.reboot_command,
    ) {
        (Some(f), _) if !f.is_empty() => Reboot::Record(PathBuf::from(f)),
        (_, Some(cmd)) => Reboot::Command(cmd),
        _ => s.reboot,
    };
    Ok(match flow::run(c, &s)? {
        Done::NothingToDo(why) => format!("nothing to do: {why}"),
        Done::DryRun => "dry run: reboot allowed".to_string(),
        Done::RebootIssued => "reboot issued".to_string(),
        Done::PostBootFinished => "post-boot phase finished".to_string(),
    })
}
