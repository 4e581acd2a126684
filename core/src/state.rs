//! Persistent state (`<state_dir>/state`, TOML, versioned) and this boot's
//! runtime markers (`/run/umm/`). Format: docs/state-format.md.
//!
//! The state is data only: it is parsed, never executed. It is written with
//! [`fsutil::write_atomic`], so a crash leaves the old or the new file. A file
//! that cannot be used never stops a boot: readers treat it as empty, and the
//! first writer moves it aside to `state.corrupt-<unix time>`.

use crate::decision::Decision;
use crate::fsutil;
use crate::paths::{self, Root};
use crate::perms;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

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
pub fn read(root: &Root, state_dir: &Path) -> ReadState {
    let path = root.path(state_path(state_dir));
    let text = match fsutil::read_optional(&path) {
        Ok(None) => {
            return ReadState {
                state: State::default(),
                problem: None,
            }
        }
        Ok(Some(t)) => t,
        Err(e) => return empty_because(format!("cannot read {}: {e}", path.display())),
    };
    if let Err(e) = perms::check_trusted(&path) {
        return empty_because(e.to_string());
    }
    match State::from_toml(&text) {
        Ok(state) => ReadState {
            state,
            problem: None,
        },
        Err(e) => empty_because(format!("{} is corrupt: {e}", path.display())),
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
pub fn read_for_update(root: &Root, state_dir: &Path, now: u64) -> ReadState {
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
pub fn write(root: &Root, state_dir: &Path, state: &State) -> std::io::Result<()> {
    fsutil::write_atomic(
        &root.path(state_path(state_dir)),
        state.to_toml().as_bytes(),
        0o644,
    )
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
        fsutil::read_optional(&root.path(p))
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
    fsutil::read_optional(&root.path(paths::BOOT_ID))
        .ok()
        .flatten()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown-boot".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Reason;
    use std::fs;

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
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        let dir = Path::new("/var/lib/umm");
        let file = d.path().join("var/lib/umm/state");
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(&file, "version = 1\nunclean_boots = [oops\n").unwrap();
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
        assert!(d.path().join("var/lib/umm/state.corrupt-99").exists());
    }

    #[test]
    fn leftover_temp_file_is_ignored() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        let dir = Path::new("/var/lib/umm");
        write(&root, dir, &sample()).unwrap();
        fs::write(d.path().join("var/lib/umm/state.123.tmp~"), "half-writ").unwrap();
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
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        assert_eq!(read_runtime(&root), Runtime::default());
        fs::create_dir_all(d.path().join("run/umm")).unwrap();
        fs::write(
            d.path().join("run/umm/decision"),
            "decision=maintenance:cmdline\n",
        )
        .unwrap();
        assert_eq!(
            read_runtime(&root).recorded,
            Some(Decision::Maintenance(Reason::Cmdline))
        );
        fs::write(
            d.path().join("run/umm/boot"),
            marker_text(&Decision::Maintenance(Reason::Requested), "b", 1),
        )
        .unwrap();
        fs::write(d.path().join("run/umm/resumed"), "").unwrap();
        let rt = read_runtime(&root);
        assert_eq!(rt.recorded, Some(Decision::Maintenance(Reason::Requested)));
        assert!(rt.resumed);
        fs::write(d.path().join("run/umm/boot"), "garbage").unwrap();
        assert_eq!(
            read_runtime(&root).recorded,
            Some(Decision::Maintenance(Reason::Cmdline))
        );
    }
}
