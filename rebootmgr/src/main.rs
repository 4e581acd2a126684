//! rebootmgr: reboot this node when it needs it and the cluster allows it.
//! Only argument parsing and dispatch live here.

mod cmd;
mod conf;
mod decide;
mod exit;
mod flow;
mod holiday;
mod local;
mod metrics;
mod notify;
mod progress;
mod status;
mod stuck;
mod trigger;
mod window;

use clap::{CommandFactory, Parser, Subcommand};
use cmd::run::RunArgs;
use exit::{Abort, Exit};
use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use umm_coord::consul::Consul;

#[derive(Parser, Debug)]
#[command(
    name = "rebootmgr",
    version = env!("UMM_LONG_VERSION"),
    about = "Consul-coordinated reboots",
    long_about = "Consul-coordinated reboots. Without a command, `rebootmgr [OPTIONS] [RUN OPTIONS]` \
                  is `rebootmgr [OPTIONS] run [RUN OPTIONS]` (see `rebootmgr run --help`).",
    after_help = exit::HELP
)]
struct Cli {
    /// Consul HTTP address [default: rebootmgr.toml's [consul] address, else CONSUL_HTTP_ADDR, else http://127.0.0.1:8500]
    #[arg(long, global = true)]
    consul: Option<String>,
    /// This node's name [default: the Consul agent's node name]
    #[arg(long, global = true)]
    node: Option<String>,
    /// More output (-v info, -vv debug)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Reboot if needed and allowed (the default when no command is given)
    #[command(
        after_help = exit::HELP,
        long_about = "Reboot if needed and allowed (the default when no command is given).\n\n\
            Settings come from /usr/lib/rebootmgr/rebootmgr.toml, /etc/rebootmgr/rebootmgr.toml and \
            the drop-ins in /etc/rebootmgr/rebootmgr.toml.d/ and /run/rebootmgr/rebootmgr.toml.d/; a \
            flag wins over every file (`rebootmgr check-config` checks them). Durations take seconds \
            (\"130\") or a unit (\"2min\", \"1h 30min\"). Reboot windows ([[window]] in the files, or \
            the Consul keys service/rebootmgr/<group>_window and service/rebootmgr/window): outside \
            them, before this node's turn or too late to finish, the run ends with exit 12 and \
            nothing is taken in Consul."
    )]
    Run(Box<RunArgs>),
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
    /// Check the config files (/etc/rebootmgr/rebootmgr.toml and drop-ins):
    /// exit 0 when valid, 104 naming each file and key with an error
    CheckConfig(CheckConfigArgs),
}

#[derive(clap::Args, Debug)]
struct CheckConfigArgs {
    /// Print the result as JSON (ok, files, errors, and which file set each key)
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    // A panic is a bug: it must never exit with a documented code (Rust's
    // default, 101, is "node disabled"). The run's own cleanup (abort-phase
    // tasks, slot release) is done in flow::holding_slot, which catches
    // panics while the slot is held.
    std::panic::set_hook(Box::new(|info| {
        let _ = writeln!(
            std::io::stderr(),
            "rebootmgr: internal error (a bug; please report it): {info}; exit {}",
            Exit::Internal.code()
        );
    }));
    match std::panic::catch_unwind(real_main) {
        Ok(code) => code,
        Err(_) => ExitCode::from(Exit::Internal.code() as u8),
    }
}

fn real_main() -> ExitCode {
    // `rebootmgr completions SHELL`: the completion script (hidden; the package installs them).
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [cmd, shell] = args.as_slice() {
        if cmd == "completions" {
            use clap::ValueEnum;
            let Ok(shell) = clap_complete::Shell::from_str(shell, false) else {
                eprintln!("rebootmgr: completions: unknown shell '{shell}' (bash, zsh, fish, elvish, powershell)");
                return ExitCode::from(Exit::Usage.code() as u8);
            };
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "rebootmgr",
                &mut std::io::stdout(),
            );
            return ExitCode::SUCCESS;
        }
    }
    let cli = match Cli::try_parse_from(with_default_command(std::env::args_os().collect())) {
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
            // A closed stdout (`rebootmgr status | head -1`) is not an error
            // of the run: the work is done.
            if !msg.is_empty() {
                let _ = writeln!(std::io::stdout(), "{msg}");
            }
            ExitCode::from(Exit::Ok.code() as u8)
        }
        Err(a) => {
            // In the journal: the error priority, no second identifier.
            let _ = if umm_core::logger::stderr_is_journal() {
                writeln!(std::io::stderr(), "<3>{a}")
            } else {
                writeln!(std::io::stderr(), "rebootmgr: {a}")
            };
            ExitCode::from(a.exit.code() as u8)
        }
    }
}

fn dispatch(cli: Cli) -> Result<String, Abort> {
    let file = conf::load(&umm_core::paths::Root::from_env());
    if let Cmd::CheckConfig(a) = &cli.cmd {
        let report = conf::report(&file, a.json);
        if file.errors.is_empty() {
            return Ok(report);
        }
        if a.json {
            let _ = writeln!(std::io::stdout(), "{report}");
        }
        return Err(Abort::new(
            Exit::NotConfigured,
            format!(
                "{} error(s) in the config files:\n  {}",
                file.errors.len(),
                file.errors.join("\n  ")
            ),
        ));
    }
    if !matches!(cli.cmd, Cmd::Run(_)) {
        for e in &file.errors {
            log::warn!("{e}");
        }
    }
    let c = consul(&file.config, cli.consul.as_deref())?;
    let node = cli.node;
    match cli.cmd {
        Cmd::Run(a) => cmd::run::run(&c, node, *a, &file),
        Cmd::CheckConfig(_) => unreachable!("handled above"),
        Cmd::Status(a) => cmd::status::run(&c, node, a, &file.config),
        Cmd::Stop(a) => cmd::stop::run(&c, node, a),
        Cmd::Unstop(a) => cmd::stop::run_unstop(&c, node, a),
        Cmd::Release(a) => cmd::release::run(&c, node, a),
        Cmd::Config(a) => cmd::config::run(&c, node, a),
    }
}

/// The Consul client: the CONSUL_* variables, then the config file's
/// `[consul]` table, then `--consul`.
fn consul(file: &conf::FileConfig, flag: Option<&str>) -> Result<Consul, Abort> {
    use umm_coord::consul::ConsulError;
    use umm_coord::tls::ConsulSettings;
    let env = ConsulSettings::from_env().map_err(|err| ConsulError::Config { err })?;
    let over = ConsulSettings {
        addr: flag.map(str::to_string),
        ..Default::default()
    };
    Ok(Consul::with_settings(
        &env.overlay(&file.consul).overlay(&over),
    )?)
}

/// Without a command, `run` is meant: it is inserted after the global
/// options (`rebootmgr -v --check-triggers` = `rebootmgr -v run
/// --check-triggers`, the Python tool's spelling), so the run options are
/// defined, and listed in the help, once: under `run`.
fn with_default_command(mut args: Vec<OsString>) -> Vec<OsString> {
    let cli = Cli::command();
    let global = |long: Option<&str>, short: Option<char>| {
        cli.get_arguments().find(|a| {
            a.is_global_set()
                && ((long.is_some() && a.get_long() == long)
                    || (short.is_some() && a.get_short() == short))
        })
    };
    let mut i = 1;
    while i < args.len() {
        let t = args[i].to_string_lossy().into_owned();
        if let Some(long) = t.strip_prefix("--").filter(|l| !l.is_empty()) {
            let (name, inline_value) = match long.split_once('=') {
                Some((n, _)) => (n, true),
                None => (long, false),
            };
            if let Some(a) = global(Some(name), None) {
                i += if a.get_action().takes_values() && !inline_value {
                    2
                } else {
                    1
                };
                continue;
            }
            if name == "help" || name == "version" {
                return args;
            }
        } else if let Some(shorts) = t.strip_prefix('-').filter(|s| !s.is_empty()) {
            if shorts
                .chars()
                .all(|ch| global(None, Some(ch)).is_some_and(|a| !a.get_action().takes_values()))
            {
                i += 1;
                continue;
            }
            if shorts == "h" || shorts == "V" {
                return args;
            }
        } else if t == "help" || cli.find_subcommand(&t).is_some() {
            return args;
        }
        break;
    }
    args.insert(i.min(args.len()), OsString::from("run"));
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn run_is_the_default_command() {
        for (given, want) in [
            ("rebootmgr", "rebootmgr run"),
            (
                "rebootmgr -v --check-triggers",
                "rebootmgr -v run --check-triggers",
            ),
            ("rebootmgr -vv --dryrun", "rebootmgr -vv run --dryrun"),
            (
                "rebootmgr --consul http://x --node n1 --settle 0",
                "rebootmgr --consul http://x --node n1 run --settle 0",
            ),
            ("rebootmgr --node=n1 -n", "rebootmgr --node=n1 run -n"),
            (
                "rebootmgr --node n1 status --json",
                "rebootmgr --node n1 status --json",
            ),
            (
                "rebootmgr -v run --check-triggers",
                "rebootmgr -v run --check-triggers",
            ),
            ("rebootmgr --help", "rebootmgr --help"),
            ("rebootmgr -h", "rebootmgr -h"),
            ("rebootmgr --version", "rebootmgr --version"),
            ("rebootmgr help run", "rebootmgr help run"),
        ] {
            assert_eq!(with_default_command(argv(given)), argv(want), "{given}");
        }
    }

    #[test]
    fn every_option_has_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                if a.get_help().is_none() {
                    missing.push(format!("{path} {}", a.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "rebootmgr", &mut missing);
        assert!(missing.is_empty(), "options without help: {missing:?}");
        Cli::command().debug_assert();
    }
}
