//! The operator's commands (`umm status|on|off|enable|disable`), one file
//! each. `src/bin/umm.rs` only parses arguments and calls `run` here.
//!
//! Every command reads the system through [`Root`], so tests run the real
//! binary on a fake root; the init system is reached through
//! [`init::InitSystem`], which tests replace with recorders (see
//! `UMM_FAKE_SYSTEMD` / `UMM_FAKE_REBOOT` in docs/umm.8.md).

pub mod coord;
pub mod init;
pub mod off;
pub mod on;
pub mod pacemaker;
pub mod status;
pub mod switch;

use std::fmt;
use umm_core::config::{self, Loaded};
use umm_core::decision::Decision;
use umm_core::fsutil::Wait;
use umm_core::paths::Root;
use umm_core::state::{self, ReadState, Runtime, State, StateLock, UpdateError};

/// Exit statuses of every `umm` command (documented in docs/umm.8.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done (or, for `status`, the status was shown).
    Ok = 0,
    /// The command failed: a hook failed or timed out, a file could not be
    /// written, the init system refused or the target did not come up.
    Failed = 1,
    /// Bad usage: unknown command or option (clap's own code).
    Usage = 2,
    /// Refused because of the current state; nothing was changed (e.g.
    /// `umm off` when not in maintenance mode).
    Refused = 3,
    /// Not permitted: a mutating command run by a user other than root.
    NotRoot = 4,
    /// Internal error: umm panicked (a bug). Never one of the statuses
    /// above, so a script cannot mistake it for a refusal (EX_SOFTWARE).
    Internal = 70,
}

/// An error that carries its exit status and says what to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub exit: Exit,
    pub message: String,
}

impl CliError {
    pub fn failed(message: impl Into<String>) -> CliError {
        CliError {
            exit: Exit::Failed,
            message: message.into(),
        }
    }

    pub fn refused(message: impl Into<String>) -> CliError {
        CliError {
            exit: Exit::Refused,
            message: message.into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

pub type CliResult = Result<Exit, CliError>;

/// Where the node is, as `umm status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `enabled = false`.
    Disabled,
    /// This boot paused at umm.target and has not been resumed.
    Maintenance,
    /// A request is persisted; the next boot enters maintenance mode.
    Entering,
    /// `umm off` resumed this boot without a reboot.
    Resumed,
    Normal,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Disabled => "disabled",
            Mode::Maintenance => "maintenance",
            Mode::Entering => "entering",
            Mode::Resumed => "resumed",
            Mode::Normal => "normal",
        }
    }
}

/// Everything a command reads before it acts, read once and without
/// changing anything (a corrupt state file is only moved aside by writers,
/// once they have decided to write).
pub struct Snapshot {
    pub root: Root,
    pub loaded: Loaded,
    pub state: ReadState,
    pub runtime: Runtime,
    /// `/run/umm/boot` exists (umm-boot.service ran this boot).
    pub boot_recorded: bool,
    /// This boot's maintenance decision, if this boot is (or was) in
    /// maintenance mode: the recorded marker, else the generator's
    /// `default.target -> umm.target` link (umm-boot.service failed).
    pub boot_maintenance: Option<Decision>,
    pub boot_id: String,
}

/// The generator's override link (systemd): present when it redirected this boot.
pub const GENERATOR_EARLY_DEFAULT: &str = "/run/systemd/generator.early/default.target";

impl Snapshot {
    pub fn read(root: &Root) -> Snapshot {
        let loaded = config::load(root);
        let st = state::read(root, &loaded.config.state_dir);
        let runtime = state::read_runtime(root);
        let boot_recorded = root.path(state::BOOT_RECORD).exists();
        let boot_maintenance = match runtime.recorded {
            Some(d) if d.is_maintenance() => Some(d),
            Some(_) => None,
            None => generator_redirected(root).then(|| {
                // umm-boot.service did not record this boot; the generator's
                // inputs still tell why it redirected.
                let g = umm_core::inputs::gather(root, None, false);
                if g.decision.is_maintenance() {
                    g.decision
                } else {
                    Decision::Maintenance(umm_core::decision::Reason::Cmdline)
                }
            }),
        };
        Snapshot {
            root: root.clone(),
            loaded,
            state: st,
            runtime,
            boot_recorded,
            boot_maintenance,
            boot_id: state::boot_id(root),
        }
    }

    /// This boot paused at umm.target and `umm off` has not resumed it.
    pub fn in_maintenance(&self) -> bool {
        self.boot_maintenance.is_some() && !self.runtime.resumed
    }

    pub fn mode(&self) -> Mode {
        if !self.loaded.config.enabled {
            Mode::Disabled
        } else if self.in_maintenance() {
            Mode::Maintenance
        } else if self.state.state.request.is_some() {
            Mode::Entering
        } else if self.runtime.resumed {
            Mode::Resumed
        } else {
            Mode::Normal
        }
    }

    pub fn reason(&self) -> Option<&'static str> {
        if self.in_maintenance() {
            self.boot_maintenance.as_ref().and_then(|d| d.reason_str())
        } else {
            None
        }
    }
}

/// Mutating commands act on a broken config or state too (that is how a
/// node gets out of trouble), but say so first.
pub fn report_config_problems(snap: &Snapshot) {
    for e in &snap.loaded.errors {
        crate::errln!("umm: warning: config: {e} (see 'umm status')");
    }
}

fn generator_redirected(root: &Root) -> bool {
    std::fs::read_link(root.path(GENERATOR_EARLY_DEFAULT))
        .map(|t| t.file_name().is_some_and(|n| n == "umm.target"))
        .unwrap_or(false)
}

pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Mutating commands are root's: they run hooks as root and change what the
/// next boot does.
pub fn require_root(command: &str) -> Result<(), CliError> {
    if euid() == 0 {
        Ok(())
    } else {
        Err(CliError {
            exit: Exit::NotRoot,
            message: format!(
                "'umm {command}' changes how this node boots and must be run as root: try 'sudo umm {command}' ('umm status' works for everyone)"
            ),
        })
    }
}

/// Serialises the mutating commands (two operators, or a script racing an
/// operator), so that one's hooks and state update never interleave with
/// another's, nor with a boot step's update. Held until the returned lock is
/// dropped; the state is then changed with [`state::update_locked`].
pub fn lock(root: &Root) -> Result<StateLock, CliError> {
    state::lock(root, Wait::UpTo(state::COMMAND_LOCK_WAIT)).map_err(|e| match e {
        UpdateError::Busy => CliError::refused(format!(
            "{e}; nothing changed. Wait for it to finish (its hooks may take up to hook_timeout) and retry"
        )),
        UpdateError::UnsafeLock(m) => CliError::failed(format!("{m}; nothing changed")),
        e => CliError::failed(format!("{e}; check that /run is writable and retry")),
    })
}

/// Changes the state under the command's lock (see [`lock`]) and returns
/// what `change` returned. A state file that could not be used was moved
/// aside: that is reported. A failure is an error that ends with `then`
/// (what it means for this command, and what to do).
pub fn update_state<T>(
    lock: &StateLock,
    snap: &Snapshot,
    change: impl FnOnce(&mut State) -> T,
    then: &str,
) -> Result<T, CliError> {
    let done = state::update_locked(lock, &snap.root, &snap.loaded.config.state_dir, change)
        .map_err(|e| CliError::failed(format!("{e}; {then}")))?;
    if let Some(p) = done.problem {
        crate::errln!("umm: warning: state: {p}; started from an empty state");
    }
    Ok(done.value)
}

/// The user behind this command, for the request's `requested_by`.
pub fn caller() -> String {
    let uid = euid();
    let name = user_name(uid).unwrap_or_else(|| format!("uid {uid}"));
    match std::env::var("SUDO_USER") {
        Ok(s) if !s.is_empty() && s != name => format!("{name} (sudo from {s})"),
        _ => name,
    }
}

fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer points to memory we own for the whole call; the
    // result points into `buf`/`pwd`, read before they go out of scope.
    let rc =
        unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut out) };
    if rc != 0 || out.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: pw_name is a NUL-terminated string inside `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

pub use umm_core::fsutil::format_time;

/// Shell-like rendering of an argv list for messages (never executed).
pub fn show_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_argv_for_display() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            show_argv(&v(&["sh", "-c", "echo 'hi' > /f"])),
            "sh -c 'echo '\\''hi'\\'' > /f'"
        );
        assert_eq!(show_argv(&v(&["apt-get", "-y", ""])), "apt-get -y ''");
    }
}
