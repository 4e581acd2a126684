//! Persistent state (`<state_dir>/state`, TOML, versioned) and this boot's
//! runtime markers (`/run/umm/`). Format: docs/state-format.md.
//!
//! The state is data only: it is parsed, never executed. Every change goes
//! through [`update`] (or [`update_locked`] for a command that already holds
//! the lock): take the lock, read, apply one of the named transitions below,
//! write with [`fsutil::write_atomic`] — so a crash leaves the old or the new
//! file, and two writers never lose each other's change. A file that cannot
//! be used never stops a boot: readers treat it as empty, and the first
//! writer moves it aside to `state.corrupt-<unix time>`.

use crate::decision::Decision;
use crate::fsutil::{self, LockError, Wait};
use crate::paths::{self, Root};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const STATE_FILE: &str = "state";
pub const VERSION: u32 = 1;
/// How many transitions `history` keeps (oldest dropped first).
pub const HISTORY_LEN: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    /// Consecutive boots that ended uncleanly (counted when the next boot is recorded).
    #[serde(default)]
    pub unclean_boots: u32,
    /// The boot being watched: recorded, in normal operation, and not yet
    /// closed by a clean shutdown or by reaching `counter_reset_time`. If the
    /// next boot finds it still open, that boot ended uncleanly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_boot: Option<OpenBoot>,
    /// A maintenance request made by `umm on`; holds until `umm off`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Request>,
    /// What the scheduled command of the latest request did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_result: Option<CommandResult>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Transition>,
}

impl Default for State {
    fn default() -> Self {
        State {
            version: VERSION,
            unclean_boots: 0,
            open_boot: None,
            request: None,
            command_result: None,
            history: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenBoot {
    pub boot_id: String,
    /// Unix time the boot was recorded.
    pub started: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Unix time of `umm on`; also identifies the request.
    pub requested_at: u64,
    /// Who asked (user name or uid).
    #[serde(default)]
    pub requested_by: String,
    /// The scheduled command as an argv list (never run through a shell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandResult {
    /// `requested_at` of the request the command belonged to: it runs once per request.
    pub request: u64,
    pub command: Vec<String>,
    pub started: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<u64>,
    /// Exit code, or 128+signal; absent while running (or if the node died).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<i32>,
    /// File holding stdout+stderr.
    pub output_file: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub time: u64,
    pub from: String,
    pub to: String,
    pub reason: String,
}

impl State {
    /// Unclean boots including the previous one if it never closed.
    pub fn effective_unclean(&self, boot_id: &str) -> u32 {
        let previous_unclean = self
            .open_boot
            .as_ref()
            .is_some_and(|b| b.boot_id != boot_id);
        self.unclean_boots.saturating_add(previous_unclean as u32)
    }

    /// Records this boot once its decision is known (idempotent per boot id).
    /// Disabled: nothing is counted and the count is cleared. Maintenance:
    /// the count is held and the boot is not watched. Normal: the boot is
    /// watched until it closes cleanly or becomes stable.
    pub fn record_boot(&mut self, decision: &Decision, boot_id: &str, now: u64) {
        if self
            .open_boot
            .as_ref()
            .is_some_and(|b| b.boot_id == boot_id)
        {
            return;
        }
        match decision {
            Decision::Disabled => {
                self.unclean_boots = 0;
                self.open_boot = None;
            }
            Decision::Maintenance(_) => {
                self.unclean_boots = self.effective_unclean(boot_id);
                self.open_boot = None;
            }
            Decision::Normal => {
                self.unclean_boots = self.effective_unclean(boot_id);
                self.open_boot = Some(OpenBoot {
                    boot_id: boot_id.to_string(),
                    started: now,
                });
            }
        }
        self.note_transition(
            now,
            decision.mode(),
            decision.reason_str().unwrap_or("boot"),
        );
    }

    /// Closes the watched boot (clean shutdown or stable uptime) and resets
    /// the count. Does nothing unless `boot_id` is the watched boot: in
    /// maintenance mode nothing is watched, so the count is held.
    pub fn close_boot(&mut self, boot_id: &str) -> bool {
        if self
            .open_boot
            .as_ref()
            .is_some_and(|b| b.boot_id == boot_id)
        {
            self.open_boot = None;
            self.unclean_boots = 0;
            true
        } else {
            false
        }
    }

    /// Leaves maintenance mode without a reboot: clears the request and the
    /// count, and watches the rest of this boot as normal operation.
    pub fn resume(&mut self, boot_id: &str, now: u64) {
        self.request = None;
        self.unclean_boots = 0;
        self.open_boot = Some(OpenBoot {
            boot_id: boot_id.to_string(),
            started: now,
        });
        self.note_transition(now, "normal", "resumed");
    }

    /// `umm on`: persists the request (the next boot enters maintenance mode).
    pub fn request_maintenance(&mut self, req: Request, now: u64) {
        self.request = Some(req);
        self.note_transition(now, "entering", "requested");
    }

    /// `umm on --replace-command` in maintenance mode: a new request (new id,
    /// so its command runs) replaces the old; this boot stays where it is.
    pub fn replace_request(&mut self, req: Request) {
        self.request = Some(req);
    }

    /// `umm off` before the requested reboot happened: cancels the request and
    /// resets the count; this boot goes on being watched. Returns the request.
    pub fn cancel_request(&mut self, now: u64) -> Option<Request> {
        let req = self.request.take();
        self.unclean_boots = 0;
        self.note_transition(now, "normal", "cancelled");
        req
    }

    /// `umm enable`.
    pub fn enable(&mut self, now: u64) {
        self.note_transition(now, "normal", "enabled");
    }

    /// `umm disable`: clears the count and the watched boot (a stale count
    /// must never send the node to maintenance mode right after it is enabled
    /// again) and cancels a pending request, which it returns.
    pub fn disable(&mut self, now: u64) -> Option<Request> {
        self.unclean_boots = 0;
        self.open_boot = None;
        let req = self.request.take();
        self.note_transition(now, "disabled", "disabled");
        req
    }

    /// The scheduled command due now: the pending request's id and argv,
    /// unless it has none or it already started for this request (it runs
    /// once per request).
    pub fn command_due(&self) -> Option<(u64, Vec<String>)> {
        let req = self.request.as_ref()?;
        let argv = req.command.clone().filter(|a| !a.is_empty())?;
        let ran = self
            .command_result
            .as_ref()
            .is_some_and(|r| r.request == req.requested_at);
        (!ran).then_some((req.requested_at, argv))
    }

    /// Records that the command of `request` starts now, before it runs: if
    /// the node dies meanwhile, it does not run again.
    pub fn command_started(
        &mut self,
        request: u64,
        command: Vec<String>,
        output_file: String,
        now: u64,
    ) {
        self.command_result = Some(CommandResult {
            request,
            command,
            started: now,
            finished: None,
            exit_status: None,
            output_file,
        });
    }

    /// Records how the command of `request` ended (nothing if a newer
    /// request's command has been recorded meanwhile).
    pub fn command_finished(&mut self, request: u64, exit_status: i32, now: u64) {
        if let Some(r) = self
            .command_result
            .as_mut()
            .filter(|r| r.request == request)
        {
            r.finished = Some(now);
            r.exit_status = Some(exit_status);
        }
    }

    /// Appends a transition when the mode or reason differs from the last one.
    pub fn note_transition(&mut self, now: u64, to: &str, reason: &str) {
        let from = self
            .history
            .last()
            .map(|t| t.to.clone())
            .unwrap_or_else(|| "unknown".into());
        if self
            .history
            .last()
            .is_some_and(|t| t.to == to && t.reason == reason)
        {
            return;
        }
        self.history.push(Transition {
            time: now,
            from,
            to: to.to_string(),
            reason: reason.to_string(),
        });
        let excess = self.history.len().saturating_sub(HISTORY_LEN);
        self.history.drain(..excess);
    }

    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self)
            .unwrap_or_else(|e| format!("# cannot serialize: {e}\nversion = {VERSION}\n"));
        format!("# umm state; written by umm, do not edit (see docs/state-format.md)\n{body}")
    }

    pub fn from_toml(text: &str) -> Result<State, String> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| e.message().to_string())?;
        match table.get("version").and_then(|v| v.as_integer()) {
            Some(v) if v == VERSION as i64 => {}
            Some(v) => {
                return Err(format!(
                    "unsupported state version {v} (this umm reads {VERSION})"
                ))
            }
            None => return Err("no 'version' key".into()),
        }
        toml::Value::Table(table)
            .try_into::<State>()
            .map_err(|e| e.message().to_string())
    }
}

/// The state file's path on the running system.
pub fn state_path(state_dir: &Path) -> PathBuf {
    state_dir.join(STATE_FILE)
}

/// The result of reading the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadState {
    pub state: State,
    /// Why the file on disk could not be used (the state is then empty).
    pub problem: Option<String>,
}

/// Reads the state without changing anything (safe on a read-only root).
/// The file is opened once, checked (a regular file, not a link, trusted
/// with every directory above it, at most 1 MiB) and then read.
pub fn read(root: &Root, state_dir: &Path) -> ReadState {
    let text = match fsutil::read_text(root, &state_path(state_dir), &fsutil::Policy::STATE) {
        Ok(None) => {
            return ReadState {
                state: State::default(),
                problem: None,
            }
        }
        Ok(Some(t)) => t,
        Err(e) => return empty_because(e.to_string()),
    };
    match State::from_toml(&text) {
        Ok(state) => ReadState {
            state,
            problem: None,
        },
        Err(e) => empty_because(format!(
            "{} is corrupt: {e}",
            root.path(state_path(state_dir)).display()
        )),
    }
}

fn empty_because(problem: String) -> ReadState {
    ReadState {
        state: State::default(),
        problem: Some(problem),
    }
}

/// Reads the state for a writer: a file that cannot be used is moved aside
/// (kept for inspection) and an empty state returned. The message says where
/// the file went.
fn read_for_update(root: &Root, state_dir: &Path, now: u64) -> ReadState {
    let mut r = read(root, state_dir);
    if let Some(problem) = &r.problem {
        let path = root.path(state_path(state_dir));
        if path.exists() {
            r.problem = Some(match fsutil::move_aside(&path, now) {
                Ok(dest) => format!("{problem}; moved aside to {}", dest.display()),
                Err(e) => format!("{problem}; could not move it aside: {e}"),
            });
        }
    }
    r
}

/// Writes the state atomically (mode 0644: `umm status` works for everyone).
fn write(root: &Root, state_dir: &Path, state: &State) -> io::Result<()> {
    fsutil::write_atomic(
        &root.path(state_path(state_dir)),
        state.to_toml().as_bytes(),
        0o644,
    )
}

// ---- the one way to change the state ----

/// The lock every writer of the state holds: the CLI commands for their
/// whole run (hooks included, so two never interleave), the boot steps for
/// their read-modify-write. In `/run` (root's alone: no other user can
/// create, open or hold it; see `fsutil::lock_exclusive`); a reboot clears it.
pub const LOCK_FILE: &str = "/run/umm.lock";

/// How long a boot step ([`update`]) waits for a command that holds the
/// lock (`umm-boot.service` gives up after 30 s).
pub const UPDATE_LOCK_WAIT: Duration = Duration::from_secs(20);

/// How long a CLI command waits for the lock before it refuses (exit 3): long
/// enough for a boot step's update (milliseconds), far shorter than another
/// command's hooks.
pub const COMMAND_LOCK_WAIT: Duration = Duration::from_secs(2);

/// Proof that this process holds [`LOCK_FILE`]; released when dropped.
#[derive(Debug)]
pub struct StateLock {
    _lock: fsutil::Lock,
}

/// Takes the state lock under `root`, waiting as `wait` says.
pub fn lock(root: &Root, wait: Wait) -> Result<StateLock, UpdateError> {
    fsutil::lock_exclusive(&root.path(LOCK_FILE), wait)
        .map(|l| StateLock { _lock: l })
        .map_err(|e| match e {
            LockError::Busy => UpdateError::Busy,
            LockError::Io(e) => UpdateError::Lock(e),
            LockError::Unsafe(m) => UpdateError::UnsafeLock(m),
        })
}

/// Why an update did not happen. Nothing was changed on disk.
#[derive(Debug)]
pub enum UpdateError {
    /// Another umm command holds the lock.
    Busy,
    /// The lock could not be opened.
    Lock(io::Error),
    /// The lock file is not umm's own (the message says what to do).
    UnsafeLock(String),
    /// The new state could not be written (the old file is intact).
    Write { path: PathBuf, error: io::Error },
}

impl fmt::Display for UpdateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateError::Busy => write!(f, "another umm command is running (it holds {LOCK_FILE})"),
            UpdateError::Lock(e) => write!(f, "cannot open the lock {LOCK_FILE}: {e}"),
            UpdateError::UnsafeLock(m) => f.write_str(m),
            UpdateError::Write { path, error } => {
                write!(f, "cannot write {}: {error}", path.display())
            }
        }
    }
}

impl std::error::Error for UpdateError {}

impl From<UpdateError> for io::Error {
    fn from(e: UpdateError) -> io::Error {
        let kind = match &e {
            UpdateError::Busy => io::ErrorKind::WouldBlock,
            UpdateError::UnsafeLock(_) => io::ErrorKind::PermissionDenied,
            UpdateError::Lock(e) | UpdateError::Write { error: e, .. } => e.kind(),
        };
        io::Error::new(kind, e.to_string())
    }
}

/// What an update did.
#[derive(Debug)]
pub struct Updated<T> {
    /// What the transition returned.
    pub value: T,
    /// The state now on disk.
    pub state: State,
    /// Why the file on disk could not be used (it was moved aside and the
    /// update started from an empty state).
    pub problem: Option<String>,
}

/// Takes the lock (waiting up to [`UPDATE_LOCK_WAIT`]), then [`update_locked`].
pub fn update<T>(
    root: &Root,
    state_dir: &Path,
    change: impl FnOnce(&mut State) -> T,
) -> Result<Updated<T>, UpdateError> {
    let lock = lock(root, Wait::UpTo(UPDATE_LOCK_WAIT))?;
    update_locked(&lock, root, state_dir, change)
}

/// Reads the state, applies `change`, and writes the result atomically when
/// it differs (or when the file on disk was unusable and has been moved
/// aside). The caller holds the lock.
pub fn update_locked<T>(
    _lock: &StateLock,
    root: &Root,
    state_dir: &Path,
    change: impl FnOnce(&mut State) -> T,
) -> Result<Updated<T>, UpdateError> {
    let read = read_for_update(root, state_dir, fsutil::now_unix());
    let mut state = read.state.clone();
    let value = change(&mut state);
    if state != read.state || read.problem.is_some() {
        write(root, state_dir, &state).map_err(|error| UpdateError::Write {
            path: state_path(state_dir),
            error,
        })?;
    }
    Ok(Updated {
        value,
        state,
        problem: read.problem,
    })
}

// ---- this boot's runtime markers in /run/umm ----

pub const BOOT_RECORD: &str = "/run/umm/boot";
pub const EARLY_DECISION: &str = "/run/umm/decision";
pub const RESUMED: &str = "/run/umm/resumed";

/// What this boot has already established.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Runtime {
    /// The decision already taken for this boot: recorded by `umm boot
    /// record`, or handed over by the PID-1 shim or the initramfs.
    pub recorded: Option<Decision>,
    /// `umm off` resumed this boot.
    pub resumed: bool,
}

/// Reads `/run/umm/{boot,decision,resumed}`. Unreadable markers are ignored.
pub fn read_runtime(root: &Root) -> Runtime {
    let token = |p: &str| {
        fsutil::read_text(root, Path::new(p), &fsutil::Policy::STATE)
            .map_err(|e| log::warn!("{e}; ignoring this marker"))
            .ok()
            .flatten()
            .and_then(|t| parse_marker(&t))
    };
    Runtime {
        recorded: token(BOOT_RECORD).or_else(|| token(EARLY_DECISION)),
        resumed: root.path(RESUMED).exists(),
    }
}

/// Markers are `key=value` lines; the one that matters is `decision=<token>`.
pub fn parse_marker(text: &str) -> Option<Decision> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("decision="))
        .next_back()
        .and_then(Decision::from_token)
}

pub fn marker_text(decision: &Decision, boot_id: &str, now: u64) -> String {
    format!(
        "decision={}\nboot_id={boot_id}\ntime={now}\n",
        decision.token()
    )
}

/// This boot's id, or a fixed placeholder if the kernel does not tell.
pub fn boot_id(root: &Root) -> String {
    read_boot_id(root).unwrap_or_else(|| "unknown-boot".into())
}

/// This boot's id from the kernel, if it tells (at most 4 KiB, not a link).
pub fn read_boot_id(root: &Root) -> Option<String> {
    fsutil::read_text(
        root,
        Path::new(paths::BOOT_ID),
        &fsutil::Policy::KERNEL.with_max(4096),
    )
    .ok()
    .flatten()
    .map(|s| s.trim().to_string())
    .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Reason;
    use umm_testsupport::FakeRoot;

    fn sample() -> State {
        let mut s = State {
            unclean_boots: 2,
            open_boot: Some(OpenBoot {
                boot_id: "b1".into(),
                started: 10,
            }),
            request: Some(Request {
                requested_at: 5,
                requested_by: "root".into(),
                command: Some(vec![
                    "sh".into(),
                    "-c".into(),
                    "echo 'x y' > /root/f".into(),
                ]),
            }),
            command_result: Some(CommandResult {
                request: 5,
                command: vec!["true".into()],
                started: 6,
                finished: Some(7),
                exit_status: Some(0),
                output_file: "/var/lib/umm/command.out".into(),
            }),
            ..State::default()
        };
        s.note_transition(1, "normal", "boot");
        s
    }

    #[test]
    fn round_trips() {
        let s = sample();
        assert_eq!(State::from_toml(&s.to_toml()).unwrap(), s);
        assert_eq!(
            State::from_toml(&State::default().to_toml()).unwrap(),
            State::default()
        );
    }

    #[test]
    fn refuses_other_versions_and_garbage() {
        assert!(State::from_toml("version = 2\n")
            .unwrap_err()
            .contains("unsupported state version 2"));
        assert!(State::from_toml("unclean_boots = 1\n")
            .unwrap_err()
            .contains("version"));
        assert!(State::from_toml("version = 1\nunclean_boots = \"x\"\n").is_err());
        assert!(State::from_toml("\u{0}\u{1}garbage[[").is_err());
    }

    #[test]
    fn corrupt_file_reads_empty_and_is_moved_aside_by_writers() {
        let d = FakeRoot::new();
        let root = Root::new(d.path());
        let dir = Path::new("/var/lib/umm");
        let file = d.write("var/lib/umm/state", "version = 1\nunclean_boots = [oops\n");
        let r = read(&root, dir);
        assert_eq!(r.state, State::default());
        assert!(r.problem.as_deref().unwrap().contains("corrupt"));
        assert!(file.exists(), "a plain read must not touch the file");
        let r = read_for_update(&root, dir, 99);
        assert!(
            r.problem.as_deref().unwrap().contains("state.corrupt-99"),
            "{:?}",
            r.problem
        );
        assert!(!file.exists());
        assert!(d.p("var/lib/umm/state.corrupt-99").exists());
    }

    #[test]
    fn leftover_temp_file_is_ignored() {
        let d = FakeRoot::new();
        let root = Root::new(d.path());
        let dir = Path::new("/var/lib/umm");
        update(&root, dir, |s| *s = sample()).unwrap();
        d.write("var/lib/umm/state.123.tmp~", "half-writ");
        let r = read(&root, dir);
        assert_eq!((r.state, r.problem), (sample(), None));
    }

    #[test]
    fn counting_rules() {
        let mut s = State::default();
        // Normal boot b1 is watched.
        s.record_boot(&Decision::Normal, "b1", 1);
        assert_eq!(
            (
                s.unclean_boots,
                s.open_boot.as_ref().unwrap().boot_id.as_str()
            ),
            (0, "b1")
        );
        // Recording the same boot again changes nothing.
        s.record_boot(&Decision::Normal, "b1", 2);
        assert_eq!(s.unclean_boots, 0);
        // b1 never closed: b2 counts it.
        assert_eq!(s.effective_unclean("b2"), 1);
        s.record_boot(&Decision::Normal, "b2", 3);
        assert_eq!(s.unclean_boots, 1);
        // A clean shutdown of b2 resets.
        assert!(s.close_boot("b2"));
        assert_eq!((s.unclean_boots, s.open_boot.clone()), (0, None));
        // Maintenance holds the count and watches nothing.
        s.record_boot(&Decision::Normal, "b3", 4);
        s.record_boot(&Decision::Maintenance(Reason::RebootLoop), "b4", 5);
        assert_eq!((s.unclean_boots, s.open_boot.clone()), (1, None));
        assert!(
            !s.close_boot("b4"),
            "a clean shutdown in maintenance must not reset the count"
        );
        assert_eq!(s.effective_unclean("b5"), 1);
        // Resume resets and watches the rest of this boot.
        s.resume("b4", 6);
        assert_eq!(
            (
                s.unclean_boots,
                s.open_boot.as_ref().unwrap().boot_id.as_str()
            ),
            (0, "b4")
        );
        // Disabled clears everything.
        s.unclean_boots = 7;
        s.record_boot(&Decision::Disabled, "b6", 7);
        assert_eq!((s.unclean_boots, s.open_boot.clone()), (0, None));
    }

    fn req(at: u64, command: Option<&[&str]>) -> Request {
        Request {
            requested_at: at,
            requested_by: "root".into(),
            command: command.map(|c| c.iter().map(|w| w.to_string()).collect()),
        }
    }

    #[test]
    fn operator_transitions() {
        let mut s = State {
            unclean_boots: 2,
            ..State::default()
        };
        s.request_maintenance(req(5, None), 5);
        assert_eq!(s.history.last().unwrap().to, "entering");
        assert_eq!(s.unclean_boots, 2, "a request does not touch the count");
        // Cancelled before the reboot: request and count gone, boot still watched.
        s.record_boot(&Decision::Normal, "b1", 6);
        assert_eq!(s.cancel_request(7).map(|r| r.requested_at), Some(5));
        assert_eq!((s.request.clone(), s.unclean_boots), (None, 0));
        assert!(s.open_boot.is_some());
        assert_eq!(s.history.last().unwrap().reason, "cancelled");
        // Disable clears the count and the watched boot, and returns the request.
        s.request_maintenance(req(8, None), 8);
        s.unclean_boots = 4;
        assert_eq!(s.disable(9).map(|r| r.requested_at), Some(8));
        assert_eq!(
            (s.request.clone(), s.unclean_boots, s.open_boot.clone()),
            (None, 0, None)
        );
        s.enable(10);
        assert_eq!(
            (
                s.history.last().unwrap().to.as_str(),
                s.history.last().unwrap().reason.as_str()
            ),
            ("normal", "enabled")
        );
        // Replacing the request in MM notes no transition.
        let n = s.history.len();
        s.replace_request(req(11, Some(&["true"])));
        assert_eq!(
            (s.history.len(), s.request.clone()),
            (n, Some(req(11, Some(&["true"]))))
        );
    }

    #[test]
    fn the_scheduled_command_runs_once_per_request() {
        let mut s = State::default();
        assert_eq!(s.command_due(), None);
        s.request_maintenance(req(3, Some(&[])), 3);
        assert_eq!(s.command_due(), None, "an empty argv is no command");
        s.request_maintenance(req(4, Some(&["sh", "-c", "x"])), 4);
        let (id, argv) = s.command_due().unwrap();
        assert_eq!((id, argv.len()), (4, 3));
        s.command_started(id, argv, "/var/lib/umm/command.out".into(), 5);
        assert_eq!(s.command_due(), None, "started once: never again");
        s.command_finished(id, 7, 6);
        let r = s.command_result.clone().unwrap();
        assert_eq!((r.finished, r.exit_status), (Some(6), Some(7)));
        // A result for an older request does not overwrite the newer one.
        s.replace_request(req(9, Some(&["true"])));
        s.command_started(9, vec!["true".into()], "o".into(), 10);
        s.command_finished(4, 1, 11);
        assert_eq!(s.command_result.clone().unwrap().exit_status, None);
        assert_eq!(s.command_due(), None);
    }

    #[test]
    fn update_writes_changes_only() {
        let d = FakeRoot::new();
        let root = Root::new(d.path());
        let dir = Path::new("/var/lib/umm");
        let u = update(&root, dir, |s| s.close_boot("b1")).unwrap();
        assert!(!u.value);
        assert!(
            !d.p("var/lib/umm/state").exists(),
            "nothing changed, nothing written"
        );
        let u = update(&root, dir, |s| s.record_boot(&Decision::Normal, "b1", 1)).unwrap();
        assert_eq!(u.state, read(&root, dir).state);
        assert_eq!(u.problem, None);
        assert!(d.p("var/lib/umm/state").exists());
    }

    #[test]
    fn concurrent_updates_lose_nothing() {
        let d = FakeRoot::new();
        let (threads, each) = (4, 25);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    let root = Root::new(d.path());
                    for _ in 0..each {
                        update(&root, Path::new("/var/lib/umm"), |s| s.unclean_boots += 1).unwrap();
                    }
                });
            }
        });
        let st = read(&Root::new(d.path()), Path::new("/var/lib/umm")).state;
        assert_eq!(st.unclean_boots, threads * each);
    }

    #[test]
    fn an_update_waits_for_the_lock_and_a_cli_lock_does_not() {
        let d = FakeRoot::new();
        let root = Root::new(d.path());
        let held = lock(&root, Wait::No).unwrap();
        assert!(matches!(lock(&root, Wait::No), Err(UpdateError::Busy)));
        let r2 = root.clone();
        let h = std::thread::spawn(move || {
            update(&r2, Path::new("/var/lib/umm"), |s| s.unclean_boots = 1).unwrap()
        });
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !h.is_finished(),
            "the update went ahead while the lock was held"
        );
        // The holder's own update goes first.
        update_locked(&held, &root, Path::new("/var/lib/umm"), |s| {
            s.unclean_boots += 10
        })
        .unwrap();
        drop(held);
        assert_eq!(h.join().unwrap().state.unclean_boots, 1);
    }

    #[test]
    fn the_documented_lock_and_wait_are_the_real_ones() {
        let doc = include_str!("../../docs/state-format.md");
        for fact in [
            format!("`{LOCK_FILE}`"),
            format!("waits up to {} s", UPDATE_LOCK_WAIT.as_secs()),
            format!("after {} s", COMMAND_LOCK_WAIT.as_secs()),
        ] {
            assert!(
                doc.contains(&fact),
                "docs/state-format.md should say {fact}"
            );
        }
    }

    #[test]
    fn history_is_bounded_and_skips_repeats() {
        let mut s = State::default();
        for i in 0..50 {
            s.note_transition(i, if i % 2 == 0 { "normal" } else { "maintenance" }, "x");
            s.note_transition(i, if i % 2 == 0 { "normal" } else { "maintenance" }, "x");
        }
        assert_eq!(s.history.len(), HISTORY_LEN);
        assert_eq!(s.history.last().unwrap().time, 49);
        assert_eq!(s.history.last().unwrap().from, "normal");
    }

    #[test]
    fn runtime_markers() {
        let d = FakeRoot::new();
        let root = Root::new(d.path());
        assert_eq!(read_runtime(&root), Runtime::default());
        d.write("run/umm/decision", "decision=maintenance:cmdline\n");
        assert_eq!(
            read_runtime(&root).recorded,
            Some(Decision::Maintenance(Reason::Cmdline))
        );
        d.write(
            "run/umm/boot",
            &marker_text(&Decision::Maintenance(Reason::Requested), "b", 1),
        );
        d.write("run/umm/resumed", "");
        let rt = read_runtime(&root);
        assert_eq!(rt.recorded, Some(Decision::Maintenance(Reason::Requested)));
        assert!(rt.resumed);
        d.write("run/umm/boot", "garbage");
        assert_eq!(
            read_runtime(&root).recorded,
            Some(Decision::Maintenance(Reason::Cmdline))
        );
    }
}
