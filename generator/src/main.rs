//! `umm-generator`: the systemd generator; under the name `umm-init` (or as
//! PID 1) the pre-stage for sysvinit/upstart boots. Only dispatches.

mod generate;
mod shim;

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let called_as_init = args
        .first()
        .and_then(|a0| Path::new(a0).file_name())
        .is_some_and(|n| n == "umm-init");
    // The dracut pre-pivot hook; never taken as PID 1, where the arguments
    // come from the kernel command line.
    if args.get(1).is_some_and(|a| a == "--initrd-decide") && std::process::id() != 1 {
        let sysroot = args
            .get(2)
            .map_or("/sysroot".into(), std::path::PathBuf::from);
        return shim::initrd_decide(&sysroot);
    }
    if called_as_init || std::process::id() == 1 {
        shim::main(&args)
    } else {
        generate::main(&args)
    }
}
