//! `umm`: the operator's command. Only dispatches; see the library.

use clap::{Parser, Subcommand, ValueEnum};
use log::LevelFilter;
use std::process::ExitCode;
use umm::boot;
use umm::cli::{self, init, off::OffArgs, on::OnArgs, CliResult};
use umm_core::logger::{self, Sink};
use umm_core::paths::Root;

#[derive(Parser)]
#[command(
    name = "umm",
    version,
    about = "Maintenance mode for Linux servers",
    long_about = "Maintenance mode (MM) for Linux servers: a boot that pauses at umm.target with only \
the network and sshd running. 'umm on' reboots into it, 'umm off' resumes the paused boot \
into normal operation without a reboot.",
    after_help = "Exit status: 0 done, 1 failed, 2 bad usage, 3 refused in the current state \
(nothing changed), 4 not root. See umm(8)."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Show the mode (normal, entering, maintenance, resumed, disabled), why, and the details.
    Status {
        /// Machine-readable output (schema in umm(8) and docs/status-json.md).
        #[arg(long)]
        json: bool,
    },
    /// Request maintenance mode and reboot into it.
    On {
        /// Only persist the request: the next boot enters maintenance mode.
        #[arg(long)]
        no_reboot: bool,
        /// Replace the scheduled command of a pending request (or, in
        /// maintenance mode, set a new one).
        #[arg(long)]
        replace_command: bool,
        /// Do not run the pre-on hooks in /etc/umm/hooks/pre-on.d/.
        #[arg(long)]
        skip_hooks: bool,
        /// Select GRUB's maintenance entry (umm-maintenance) for the next boot
        /// only (next_entry in grubenv, like grub-reboot) instead of persisting a
        /// request; refused where GRUB cannot clear next_entry at boot.
        #[arg(long, conflicts_with_all = ["replace_command", "command"])]
        via_grub: bool,
        /// Command to run once maintenance mode is reached (an argv list,
        /// not passed through a shell; write 'sh -c "..."' for one).
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Leave maintenance mode: resume this boot (or cancel a pending request); 'off reboot' reboots.
    Off {
        /// 'reboot': clear the request and the count, then reboot into normal operation.
        #[arg(value_enum, value_name = "reboot", hide_possible_values = true)]
        action: Option<OffAction>,
        /// Do not run the pre-off hooks in /etc/umm/hooks/pre-off.d/.
        #[arg(long)]
        skip_hooks: bool,
        /// After 'umm off' resumed this boot but the default target did not
        /// come up: start it again (no hooks, no state change).
        #[arg(long, conflicts_with = "action")]
        retry: bool,
    },
    /// Turn umm on (writes /etc/umm/umm.toml.d/90-umm-switch.toml).
    Enable,
    /// Turn umm off: no redirect, no counting; clears the unclean-boot count.
    Disable {
        /// Also cancel a pending maintenance request (otherwise refused).
        #[arg(long)]
        force: bool,
    },
    /// Boot-time steps run by the init system's units (not for interactive use).
    #[command(subcommand, hide = true)]
    Boot(BootCmd),
}

#[derive(Clone, Copy, ValueEnum)]
enum OffAction {
    /// Reboot into normal operation instead of resuming this boot.
    Reboot,
}

#[derive(Subcommand)]
enum BootCmd {
    /// Record this boot's decision and count unclean boots (umm-boot.service start).
    Record,
    /// Mark a clean shutdown (umm-boot.service stop).
    Clean,
    /// Mark the boot stable after counter_reset_time (umm-stable.service).
    Stable,
    /// Run the scheduled command once maintenance mode is reached (umm-command.service).
    RunCommand,
    /// Block while this boot is in maintenance mode, until 'umm off' (sysvinit/upstart).
    Wait,
    /// Sleep counter_reset_time, then mark the boot stable (sysvinit/upstart).
    WaitStable,
    /// After 'umm off' with [coordination]: release Consul node maintenance and the
    /// slot once this node's checks pass (umm-coordination.service).
    CoordinationLeave,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // What the libraries log (a hook killed at its timeout, …); the
    // commands' own messages are printed by the commands.
    logger::init(
        "umm",
        Sink::Stderr,
        logger::level_from_env(LevelFilter::Warn),
    );
    let root = Root::from_env();
    let result: CliResult = match cli.command {
        Cmd::Boot(b) => return run_boot(root, b),
        Cmd::Status { json } => cli::status::run(&root, json),
        Cmd::On {
            no_reboot,
            replace_command,
            skip_hooks,
            via_grub,
            command,
        } => cli::on::run(
            &root,
            &OnArgs {
                no_reboot,
                replace_command,
                skip_hooks,
                via_grub,
                command,
            },
            init::select(&root).as_ref(),
        ),
        Cmd::Off {
            action,
            skip_hooks,
            retry,
        } => cli::off::run(
            &root,
            &OffArgs {
                reboot: matches!(action, Some(OffAction::Reboot)),
                skip_hooks,
                retry,
            },
            init::select(&root).as_ref(),
        ),
        Cmd::Enable => cli::switch::run(&root, true, false),
        Cmd::Disable { force } => cli::switch::run(&root, false, force),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("umm: {}", e.message);
            ExitCode::from(e.exit as u8)
        }
    }
}

fn run_boot(root: Root, cmd: BootCmd) -> ExitCode {
    let ctx = boot::Ctx::load(root);
    for e in &ctx.loaded.errors {
        eprintln!("umm: config: {e}");
    }
    let result = match cmd {
        BootCmd::Record => {
            boot::record(&ctx, std::env::var("UMM_DECISION").ok().as_deref()).map(|(_, notes)| {
                for n in notes {
                    println!("{n}");
                }
            })
        }
        BootCmd::Clean | BootCmd::Stable => boot::close(&ctx).map(|closed| {
            if closed {
                println!("boot closed cleanly; unclean-boot count reset");
            } else {
                println!("nothing to close (maintenance mode holds the count, or umm is disabled)");
            }
        }),
        BootCmd::CoordinationLeave => {
            return match cli::coord::leave_pending(&ctx.root, &ctx.loaded) {
                Ok(true) => {
                    println!(
                        "[coordination]: checks pass; Consul node maintenance off, slot released"
                    );
                    ExitCode::SUCCESS
                }
                Ok(false) => {
                    println!("[coordination]: nothing to release");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("umm: {}", e.message);
                    ExitCode::from(e.exit as u8)
                }
            };
        }
        BootCmd::RunCommand => boot::run_command(&ctx).map(|r| match r {
            Some(code) => println!("scheduled command finished with exit status {code}"),
            None => println!("no scheduled command to run"),
        }),
        BootCmd::Wait => {
            umm::sysv::wait_resumed(&ctx.root, umm::sysv::POLL);
            Ok(())
        }
        BootCmd::WaitStable => umm::sysv::wait_stable(&ctx, std::thread::sleep).map(|_| ()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("umm: {e}");
            ExitCode::FAILURE
        }
    }
}
