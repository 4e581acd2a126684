//! `umm status [--json]`: where the node is and why. Read-only; works for
//! every user (the scheduled command's output only for root) and whatever is
//! broken (a corrupt state or config is reported, not fatal).
//! The JSON schema is documented in docs/status-json.md; change it only by
//! adding fields, or bump `schema`.

use super::{format_time, show_argv, CliError, CliResult, Exit, Mode, Snapshot};
use serde::Serialize;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use umm_core::fsutil;
use umm_core::paths::Root;
use umm_core::state;

pub const SCHEMA: u32 = 1;
/// How much of the scheduled command's output status shows.
pub const OUTPUT_TAIL_LINES: usize = 50;
const OUTPUT_TAIL_BYTES: u64 = 64 * 1024;

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub schema: u32,
    pub mode: &'static str,
    pub reason: Option<&'static str>,
    /// This boot's recorded decision token (`normal`, `disabled`,
    /// `maintenance:<reason>`), null when umm-boot.service did not record it.
    pub boot_decision: Option<String>,
    pub enabled: bool,
    pub enabled_source: String,
    pub unclean_boots: u32,
    pub reboot_count: u32,
    pub counter_reset_time_secs: u64,
    pub hook_timeout_secs: u64,
    pub request: Option<RequestJson>,
    pub command_result: Option<CommandJson>,
    pub history: Vec<TransitionJson>,
    pub config_files: Vec<String>,
    pub state_file: String,
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RequestJson {
    pub requested_at: u64,
    pub requested_by: String,
    pub command: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CommandJson {
    pub command: Vec<String>,
    pub started: u64,
    pub finished: Option<u64>,
    pub exit_status: Option<i32>,
    pub output_file: String,
    /// The last lines of the output; null for non-root callers or when the
    /// file cannot be read.
    pub output: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TransitionJson {
    pub time: u64,
    pub from: String,
    pub to: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// `error` (something is broken and was ignored) or `warning`.
    pub level: &'static str,
    pub message: String,
}

pub fn collect(root: &Root, is_root: bool) -> Status {
    let snap = Snapshot::read(root);
    let cfg = &snap.loaded.config;
    let st = &snap.state.state;
    let mode = snap.mode();
    let mut problems = Vec::new();
    let mut error = |m: String| {
        problems.push(Problem {
            level: "error",
            message: m,
        })
    };
    for e in &snap.loaded.errors {
        error(format!("config: {e}"));
    }
    if let Some(p) = &snap.state.problem {
        error(format!(
            "state: {p}; it is treated as empty and moved aside at the next change"
        ));
    }
    let mut warn = |m: String| {
        problems.push(Problem {
            level: "warning",
            message: m,
        })
    };
    for aside in moved_aside(&root.path(&cfg.state_dir)) {
        warn(format!(
            "a state file that could not be used was moved aside to {}; inspect it, then delete it",
            cfg.state_dir.join(aside).display()
        ));
    }
    for w in &snap.loaded.warnings {
        warn(format!("config: {w}"));
    }
    if !snap.boot_recorded {
        warn(format!(
            "{} is missing: umm-boot.service did not record this boot (see 'systemctl status umm-boot.service'); the unclean-boot count may be stale",
            state::BOOT_RECORD
        ));
    }
    match crate::grub::read_env(root) {
        Ok(Some(env)) => {
            for (var, entry) in env.maintenance_selections() {
                let what = if var == "next_entry" {
                    "the next boot enters maintenance mode through GRUB"
                } else {
                    "with GRUB_DEFAULT=saved every boot enters maintenance mode"
                };
                warn(format!(
                    "GRUB's {var} in {} is the maintenance entry {entry}: {what}; 'umm off' (or 'umm off reboot') clears it",
                    env.path.display()
                ));
            }
        }
        Ok(None) => {}
        Err(e) => warn(format!(
            "GRUB: {e}; the boot entry GRUB selects was not checked"
        )),
    }
    if mode == Mode::Disabled && snap.in_maintenance() {
        warn("umm is disabled, but this boot is still paused in maintenance mode: run 'umm off' to resume it".into());
    }
    let command_result = st.command_result.as_ref().map(|r| {
        if r.exit_status.is_none() {
            warn(format!(
                "the scheduled command {} started at {} has no exit status: it is still running or the node went down while it ran",
                show_argv(&r.command),
                format_time(r.started)
            ));
        }
        CommandJson {
            command: r.command.clone(),
            started: r.started,
            finished: r.finished,
            exit_status: r.exit_status,
            output_file: r.output_file.clone(),
            output: if is_root {
                output_tail(root, Path::new(&r.output_file))
            } else {
                None
            },
        }
    });
    let source = snap.loaded.origin("enabled").to_string();
    Status {
        schema: SCHEMA,
        mode: mode.as_str(),
        reason: snap.reason(),
        boot_decision: if snap.boot_recorded {
            snap.runtime.recorded.map(|d| d.token())
        } else {
            None
        },
        enabled: cfg.enabled,
        enabled_source: source,
        unclean_boots: st.unclean_boots,
        reboot_count: cfg.reboot_count,
        counter_reset_time_secs: cfg.counter_reset_time.as_secs(),
        hook_timeout_secs: cfg.hook_timeout.as_secs(),
        request: st.request.as_ref().map(|r| RequestJson {
            requested_at: r.requested_at,
            requested_by: r.requested_by.clone(),
            command: r.command.clone(),
        }),
        command_result,
        history: st
            .history
            .iter()
            .map(|t| TransitionJson {
                time: t.time,
                from: t.from.clone(),
                to: t.to.clone(),
                reason: t.reason.clone(),
            })
            .collect(),
        config_files: snap
            .loaded
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect(),
        state_file: state::state_path(&cfg.state_dir).display().to_string(),
        problems,
    }
}

/// `state.corrupt-<time>` files in the state dir, oldest first.
fn moved_aside(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("state.corrupt-"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The last lines of a file, reading at most its last 64 KiB. Opened like
/// the state (regular file, not a link, trusted chain), never blocking.
fn output_tail(root: &Root, abs: &Path) -> Option<String> {
    let policy = fsutil::Policy::STATE.with_max(u64::MAX);
    let mut f = fsutil::open_file(root, abs, &policy).ok()??.file;
    let len = f.metadata().ok()?.len();
    let start = len.saturating_sub(OUTPUT_TAIL_BYTES);
    f.seek(SeekFrom::Start(start)).ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // probably cut in the middle
    }
    let from = lines.len().saturating_sub(OUTPUT_TAIL_LINES);
    let mut out = lines[from..].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    Some(out)
}

pub fn run(root: &Root, json: bool) -> CliResult {
    let s = collect(root, super::euid() == 0);
    let text = if json {
        serde_json::to_string_pretty(&s)
            .map(|mut t| {
                t.push('\n');
                t
            })
            .map_err(|e| CliError::failed(format!("cannot produce JSON: {e}")))?
    } else {
        render(&s)
    };
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(Exit::Ok),
        // A closed pipe (`umm status | head`) is not worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Exit::Ok),
        Err(e) => Err(CliError::failed(format!("cannot write the status: {e}"))),
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Where this boot paused, in the words of the running init system.
fn paused_explain() -> &'static str {
    if Path::new("/run/systemd/system").is_dir() {
        "this boot paused at umm.target (network and sshd only); leave with 'umm off' (resume now) or 'umm off reboot'"
    } else if super::init::is_upstart() {
        "this boot paused before the runlevel (upstart job umm-maintenance: network, sshd and a getty only); leave with 'umm off' (resume now) or 'umm off reboot'"
    } else {
        "this boot paused before the runlevel (inittab entry umm-pause: network, sshd and a getty only); leave with 'umm off' (resume now) or 'umm off reboot'"
    }
}

pub fn render(s: &Status) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = match (s.mode, s.reason) {
        ("maintenance", Some(r)) => writeln!(o, "mode: maintenance (reason: {r})"),
        (m, _) => writeln!(o, "mode: {m}"),
    };
    let explain = match s.mode {
        "maintenance" => paused_explain(),
        "entering" => {
            "maintenance mode is requested: the next boot enters it; cancel with 'umm off'"
        }
        "resumed" => "maintenance mode was left with 'umm off' during this boot",
        "disabled" => "umm does nothing at boot; turn it on with 'umm enable'",
        _ => "normal operation; enter maintenance mode with 'umm on'",
    };
    let _ = writeln!(o, "  {explain}");
    let _ = writeln!(
        o,
        "enabled: {} (set by {})",
        yes_no(s.enabled),
        s.enabled_source
    );
    let _ = writeln!(
        o,
        "unclean boots: {} (maintenance mode after more than {}; a boot is clean after a clean shutdown or {} s of normal operation)",
        s.unclean_boots, s.reboot_count, s.counter_reset_time_secs
    );
    match &s.request {
        None => {
            let _ = writeln!(o, "request: none");
        }
        Some(r) => {
            let _ = writeln!(
                o,
                "request: made {} by {}",
                format_time(r.requested_at),
                r.requested_by
            );
            let _ = match &r.command {
                Some(c) => writeln!(o, "  scheduled command: {}", show_argv(c)),
                None => writeln!(o, "  no scheduled command"),
            };
        }
    }
    if let Some(c) = &s.command_result {
        let status = match (c.exit_status, c.finished) {
            (Some(code), Some(t)) => format!("exit status {code}, finished {}", format_time(t)),
            (Some(code), None) => format!("exit status {code}"),
            (None, _) => "no exit status (running, or interrupted)".into(),
        };
        let _ = writeln!(
            o,
            "last scheduled command: {} (started {}): {status}",
            show_argv(&c.command),
            format_time(c.started)
        );
        let _ = writeln!(o, "  output: {}", c.output_file);
        match &c.output {
            Some(out) if !out.is_empty() => {
                let lines: Vec<&str> = out.lines().collect();
                let from = lines.len().saturating_sub(10);
                for l in &lines[from..] {
                    let _ = writeln!(o, "  | {l}");
                }
            }
            Some(_) => {}
            None => {
                let _ = writeln!(o, "  (output shown to root only, or not readable)");
            }
        }
    }
    if !s.history.is_empty() {
        let _ = writeln!(o, "recent transitions:");
        let from = s.history.len().saturating_sub(5);
        for t in &s.history[from..] {
            let _ = writeln!(
                o,
                "  {}  {} -> {} ({})",
                format_time(t.time),
                t.from,
                t.to,
                t.reason
            );
        }
    }
    if !s.problems.is_empty() {
        let _ = writeln!(o, "problems:");
        for p in &s.problems {
            let _ = writeln!(o, "  {}: {}", p.level, p.message);
        }
    }
    o
}
