//! `umm-generator`: the systemd generator; under the name `umm-init` (or as
//! PID 1) the pre-stage for sysvinit/upstart boots. Only dispatches.

mod generate;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    generate::main(&args)
}
