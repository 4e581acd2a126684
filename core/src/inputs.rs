//! Gathers the decision's inputs from a (possibly prefixed) root and decides.
//! Used by the generator, the PID-1 shim, the initramfs hook and `umm boot
//! record`'s fallback, so they cannot disagree. Read-only; never fails.

use crate::cmdline::{self, KernelArgs};
use crate::config::{self, Loaded};
use crate::decision::{self, Decision, Facts};
use crate::paths::Root;
use crate::state::{self, ReadState, Runtime};

pub struct Gathered {
    pub args: KernelArgs,
    pub loaded: Loaded,
    pub state: ReadState,
    pub runtime: Runtime,
    pub boot_id: String,
    pub decision: Decision,
    pub why: String,
    /// Problems to log (command line, config, state), most serious first.
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// Reads config, state and markers under `root` and decides. The command
/// line is `cmdline` when the caller has it (the initramfs hook reads its own
/// `/proc/cmdline` and decides against the real root), else it is read from
/// `root` as systemd does. `in_initrd`: `rd.umm=` counts too.
pub fn gather(root: &Root, cmdline: Option<&str>, in_initrd: bool) -> Gathered {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let line = match cmdline {
        Some(line) => line.to_string(),
        None => {
            let (line, _source, read_err) = cmdline::read(root, cmdline::in_container(root));
            if let Some(e) = read_err {
                warnings.push(format!("{e}; treating the command line as empty"));
            }
            line
        }
    };
    let args = cmdline::parse(&line, in_initrd);
    warnings.extend(args.warnings.iter().cloned());
    let loaded = config::load(root);
    errors.extend(loaded.errors.iter().map(|e| format!("config: {e}")));
    warnings.extend(loaded.warnings.iter().map(|w| format!("config: {w}")));
    let st = state::read(root, &loaded.config.state_dir);
    if let Some(p) = &st.problem {
        errors.push(format!(
            "state: {p}; treating it as empty (it is moved aside when this boot is recorded)"
        ));
    }
    let runtime = state::read_runtime(root);
    let boot_id = state::boot_id(root);
    let (decision, why) = decision::decide(&Facts {
        enabled: loaded.config.enabled,
        cmdline: args.umm,
        requested: st.state.request.is_some(),
        unclean_boots: st.state.effective_unclean(&boot_id),
        reboot_count: loaded.config.reboot_count,
        recorded: runtime.recorded,
        resumed: runtime.resumed,
    });
    Gathered {
        args,
        loaded,
        state: st,
        runtime,
        boot_id,
        decision,
        why,
        errors,
        warnings,
    }
}
