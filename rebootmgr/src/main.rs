//! rebootmgr: reboot this node when it needs it and the cluster allows it.
//! Only argument parsing and dispatch live here.

mod cmd;
mod decide;
mod exit;
mod flow;
mod local;
mod status;
mod trigger;

use clap::{Parser, Subcommand};
use cmd::run::RunArgs;
use exit::{Abort, Exit};
use std::process::ExitCode;
use umm_coord::consul::Consul;

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
    Status(cmd::status::StatusArgs),
    /// Set a stop flag (global unless --group or --node-flag)
    Stop(cmd::stop::StopArgs),
    /// Clear a stop flag (global unless --group or --node-flag)
    Unstop(cmd::stop::UnstopArgs),
    /// Operator override: free the slot and reboot markers of --node (a node
    /// that went down for its reboot and will not come back). Its Consul
    /// maintenance is left as it is.
    Release(cmd::release::ReleaseArgs),
    /// Show or change this node's config (service/rebootmgr/nodes/<node>/config)
    Config(cmd::config::ConfigArgs),
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

fn dispatch(cli: Cli) -> Result<String, Abort> {
    let c = Consul::from_env(cli.consul.as_deref());
    let node = cli.node;
    match cli.cmd {
        None => cmd::run::run(&c, node, cli.run),
        Some(Cmd::Run(a)) => cmd::run::run(&c, node, a),
        Some(Cmd::Status(a)) => cmd::status::run(&c, node, a),
        Some(Cmd::Stop(a)) => cmd::stop::run(&c, node, a),
        Some(Cmd::Unstop(a)) => cmd::stop::run_unstop(&c, node, a),
        Some(Cmd::Release(a)) => cmd::release::run(&c, node, a),
        Some(Cmd::Config(a)) => cmd::config::run(&c, node, a),
    }
}
