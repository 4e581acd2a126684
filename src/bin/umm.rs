//! `umm`: the operator's command. Only dispatches; see the library.

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use umm::boot;
use umm::paths::Root;

#[derive(Parser)]
#[command(name = "umm", version, about = "Maintenance mode for Linux servers")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Boot-time steps run by the init system's units (not for interactive use).
    #[command(subcommand, hide = true)]
    Boot(BootCmd),
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = Root::from_env();
    match cli.command {
        Cmd::Boot(b) => run_boot(root, b),
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
