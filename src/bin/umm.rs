//! `umm`: the operator's command. Only dispatches; see the library.

use clap::{Parser, Subcommand, ValueEnum};
use log::LevelFilter;
use std::process::ExitCode;
use umm::boot;
use umm::cli::{self, init, off::OffArgs, on::OnArgs, CliResult, Exit};
use umm::{errln, outln};
use umm_core::logger::{self, Sink};
use umm_core::paths::Root;

#[derive(Parser)]
#[command(
    name = "umm",
    version = env!("UMM_LONG_VERSION"),
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
        /// Words before '--': never taken as the command (refused with a
        /// hint), so that an option of the command is never taken as umm's.
        #[arg(hide = true, value_name = "WORD", allow_hyphen_values = true)]
        stray: Vec<String>,
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
    /// Compute-host maintenance on OpenStack Nova: drain a host and hand it back (docs/compute-host.md).
    #[command(subcommand)]
    Host(umm_compute::cli::HostCmd),
    /// Boot-time steps run by the init system's units (not for interactive use).
    #[command(subcommand, hide = true)]
    Boot(BootCmd),
    /// Print the completion script for SHELL (bash, zsh, fish) on stdout (the package installs them).
    #[command(hide = true)]
    Completions { shell: clap_complete::Shell },
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
    /// With [coordination] (umm-coordination.service): after 'umm off', release Consul
    /// node maintenance and the slot once this node's checks pass; in a maintenance
    /// boot entered by umm=1 or a reboot loop, set both (announce it).
    CoordinationLeave,
}

fn main() -> ExitCode {
    // A panic is a bug: it must never exit with one of the documented
    // statuses (clap's 2, or Rust's default 101), and it says so.
    std::panic::set_hook(Box::new(|info| {
        errln!(
            "umm: internal error (a bug; please report it): {info}; exit status {}",
            Exit::Internal as u8
        );
    }));
    match std::panic::catch_unwind(real_main) {
        Ok(code) => code,
        Err(_) => ExitCode::from(Exit::Internal as u8),
    }
}

fn real_main() -> ExitCode {
    let cli = Cli::parse();
    // What the libraries log (a hook killed at its timeout, …); the
    // commands' own messages are printed by the commands.
    logger::init(
        "umm",
        Sink::Stderr,
        logger::level_from_env(LevelFilter::Warn),
    );
    if std::env::var_os("UMM_FAKE_PANIC").is_some() {
        panic!("UMM_FAKE_PANIC is set (test hook)");
    }
    let root = Root::from_env();
    let read_only = matches!(cli.command, Cmd::Status { .. });
    let result: CliResult = match cli.command {
        Cmd::Boot(b) => return run_boot(root, b),
        Cmd::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "umm", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Cmd::Host(h) => {
            return match umm_compute::cli::run(&root, h) {
                Ok(code) => ExitCode::from(code as u8),
                Err(e) => {
                    eprintln!("umm: {}", e.message);
                    ExitCode::from(e.exit as u8)
                }
            }
        }
        Cmd::Status { json } => cli::status::run(&root, json),
        Cmd::On { stray, .. } if !stray.is_empty() => Err(cli::CliError {
            exit: Exit::Usage,
            message: format!(
                "'{}' is not an option of 'umm on': put the command to run in maintenance mode after '--', e.g. 'umm on -- {}' (see 'umm on --help')",
                stray.join(" "),
                cli::show_argv(&stray)
            ),
        }),
        Cmd::On {
            no_reboot,
            replace_command,
            skip_hooks,
            via_grub,
            stray: _,
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
    // Every command but status may have changed the state (docs/metrics.md);
    // only root's can (another user's was refused).
    if !read_only && cli::euid() == 0 {
        umm::metrics::refresh(&root, false);
    }
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            errln!("umm: {}", e.message);
            ExitCode::from(e.exit as u8)
        }
    }
}

fn run_boot(root: Root, cmd: BootCmd) -> ExitCode {
    let code = run_boot_step(root.clone(), cmd);
    // At boot and after every boot step (docs/metrics.md); never fatal.
    umm::metrics::refresh(&root, true);
    code
}

fn run_boot_step(root: Root, cmd: BootCmd) -> ExitCode {
    let ctx = boot::Ctx::load(root);
    for e in &ctx.loaded.errors {
        errln!("umm: config: {e}");
    }
    let result = match cmd {
        BootCmd::Record => {
            boot::record(&ctx, std::env::var("UMM_DECISION").ok().as_deref()).map(|(_, notes)| {
                for n in notes {
                    outln!("{n}");
                }
            })
        }
        BootCmd::Clean | BootCmd::Stable => boot::close(&ctx).map(|closed| {
            if closed {
                outln!("boot closed cleanly; unclean-boot count reset");
            } else {
                outln!("nothing to close (maintenance mode holds the count, or umm is disabled)");
            }
        }),
        BootCmd::CoordinationLeave => {
            // [pacemaker]'s standby first (in normal operation only), then
            // [coordination]; either failing fails the unit, which retries both.
            let mut pacemaker_failed = false;
            if !cli::Snapshot::read(&ctx.root).in_maintenance() {
                match cli::pacemaker::leave(&ctx.root, &ctx.loaded) {
                    Ok(Some(node)) => outln!("[pacemaker]: {node} is out of standby"),
                    Ok(None) => {}
                    Err(e) => {
                        errln!("umm: [pacemaker]: {e}; retried by umm-coordination.service");
                        pacemaker_failed = true;
                    }
                }
            }
            let fail = |code: ExitCode| {
                if pacemaker_failed {
                    ExitCode::FAILURE
                } else {
                    code
                }
            };
            return fail(match cli::coord::sync(&ctx.root, &ctx.loaded) {
                Ok(cli::coord::Synced::Released) => {
                    outln!(
                        "[coordination]: checks pass; Consul node maintenance off, slot released"
                    );
                    ExitCode::SUCCESS
                }
                Ok(cli::coord::Synced::Announced(reason)) => {
                    outln!("[coordination]: announced: Consul node maintenance ({reason}) and the group's slot");
                    ExitCode::SUCCESS
                }
                Ok(cli::coord::Synced::Nothing) => {
                    outln!("[coordination]: nothing to release");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    errln!("umm: {}", e.message);
                    ExitCode::from(e.exit as u8)
                }
            });
        }
        BootCmd::RunCommand => match boot::run_command(&ctx) {
            Ok(Some(0)) => {
                outln!("scheduled command finished with exit status 0");
                Ok(())
            }
            // The unit (umm-command.service) fails, so the failure shows
            // in systemctl and the journal as well as in 'umm status'.
            Ok(Some(code)) => Err(std::io::Error::other(format!(
                "the scheduled command failed with exit status {code}; its output is in {}",
                ctx.state_dir().join(boot::COMMAND_OUTPUT).display()
            ))),
            Ok(None) => {
                outln!("no scheduled command to run");
                Ok(())
            }
            Err(e) => Err(e),
        },
        BootCmd::Wait => {
            umm::sysv::wait_resumed(&ctx.root, umm::sysv::POLL);
            Ok(())
        }
        BootCmd::WaitStable => umm::sysv::wait_stable(&ctx, std::thread::sleep).map(|_| ()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            errln!("umm: {e}");
            ExitCode::FAILURE
        }
    }
}
