//! What the boot-time units do, on every init system: record this boot's
//! decision and count unclean boots, close the boot on a clean shutdown or
//! once it is stable, run the scheduled command once maintenance mode is
//! reached, and put up the maintenance banner. Exposed as `umm boot …`.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use umm_core::config::{self, Loaded};
use umm_core::decision::Decision;
use umm_core::fsutil;
use umm_core::inputs;
use umm_core::paths::Root;
use umm_core::state::{self, State};

/// Where the scheduled command's output is kept, in the state dir.
pub const COMMAND_OUTPUT: &str = "command.out";
/// Banners shown at login (pam_motd) and on the console (agetty).
pub const MOTD_FILE: &str = "/run/motd.d/50-umm";
pub const ISSUE_FILE: &str = "/run/issue.d/50-umm.issue";

/// Everything a boot step needs, read once.
pub struct Ctx {
    pub root: Root,
    pub loaded: Loaded,
    pub boot_id: String,
    pub now: u64,
}

impl Ctx {
    pub fn load(root: Root) -> Ctx {
        let loaded = config::load(&root);
        let boot_id = state::boot_id(&root);
        Ctx {
            root,
            loaded,
            boot_id,
            now: fsutil::now_unix(),
        }
    }

    pub fn state_dir(&self) -> &Path {
        &self.loaded.config.state_dir
    }

    /// Applies `change` to the state under the lock `umm on` takes too.
    fn update<T>(&self, change: impl FnOnce(&mut State) -> T) -> io::Result<state::Updated<T>> {
        Ok(state::update(&self.root, self.state_dir(), change)?)
    }
}

/// This boot's decision as the boot path handed it over: the generator's
/// `UMM_DECISION`, else the PID-1 shim's / initramfs' `/run/umm/decision`,
/// else (nothing ran before us) decided here from the same inputs.
pub fn this_boot_decision(ctx: &Ctx, env_token: Option<&str>) -> (Decision, String) {
    if let Some(d) = env_token.and_then(Decision::from_token) {
        return (
            d,
            "handed on in UMM_DECISION by umm-generator or umm-init".into(),
        );
    }
    if let Some(d) = state::read_runtime(&ctx.root).recorded {
        return (d, "decided earlier in this boot".into());
    }
    let g = inputs::gather(&ctx.root, None, false);
    (g.decision, format!("decided by umm boot record: {}", g.why))
}

/// `umm boot record`: persist this boot's decision, update the unclean-boot
/// count, write `/run/umm/boot`, and show the banner in maintenance mode.
/// Returns the decision and the messages worth logging.
pub fn record(ctx: &Ctx, env_token: Option<&str>) -> io::Result<(Decision, Vec<String>)> {
    let (decision, why) = this_boot_decision(ctx, env_token);
    let mut notes = vec![format!("this boot: {} ({why})", decision.token())];
    // The marker first: it is what keeps this boot's decision across
    // daemon-reloads even if /var turns out not to be writable.
    let marker = state::marker_text(&decision, &ctx.boot_id, ctx.now);
    fsutil::write_atomic(&ctx.root.path(state::BOOT_RECORD), marker.as_bytes(), 0o644)?;
    let done = ctx.update(|st| st.record_boot(&decision, &ctx.boot_id, ctx.now))?;
    if let Some(p) = done.problem {
        notes.push(format!("state: {p}; starting from an empty state"));
    }
    notes.push(format!(
        "unclean boots: {} (reboot_count = {})",
        done.state.unclean_boots, ctx.loaded.config.reboot_count
    ));
    if decision.is_maintenance() {
        write_banner(ctx, &decision)?;
    }
    Ok((decision, notes))
}

/// `umm boot clean` (clean shutdown) and `umm boot stable` (uptime reached
/// `counter_reset_time`): close the watched boot and reset the count. In
/// maintenance mode nothing is watched, so the count is held.
pub fn close(ctx: &Ctx) -> io::Result<bool> {
    Ok(ctx.update(|st| st.close_boot(&ctx.boot_id))?.value)
}

/// The banner text for a node in maintenance mode.
pub fn banner_text(decision: &Decision) -> String {
    let why = match decision.reason_str() {
        Some("cmdline") => "umm=1 on the kernel command line",
        Some("requested") => "requested with 'umm on'",
        Some("reboot-loop") => "the node kept rebooting uncleanly",
        _ => "unknown",
    };
    format!(
        "\n*** MAINTENANCE MODE (umm) ***\n\
         This node paused its boot: only the network, sshd and what they need run.\n\
         Why: {why}.\n\
         Leave: 'umm off' (resume the boot now) or 'umm off reboot'. Details: 'umm status'.\n\n"
    )
}

fn write_banner(ctx: &Ctx, decision: &Decision) -> io::Result<()> {
    let text = banner_text(decision);
    fsutil::write_atomic(&ctx.root.path(MOTD_FILE), text.as_bytes(), 0o644)?;
    fsutil::write_atomic(&ctx.root.path(ISSUE_FILE), text.as_bytes(), 0o644)
}

/// Removes the banner (on `umm off`).
pub fn remove_banner(root: &Root) {
    for f in [MOTD_FILE, ISSUE_FILE] {
        let _ = std::fs::remove_file(root.path(f));
    }
}

/// `umm boot run-command`: runs the request's scheduled command once (per
/// request), as an argv list, output to the journal (our stdout) and to
/// `<state_dir>/command.out`. Returns its exit status, or None if there was
/// nothing to run.
pub fn run_command(ctx: &Ctx) -> io::Result<Option<i32>> {
    let out_rel: PathBuf = ctx.state_dir().join(COMMAND_OUTPUT);
    let due = ctx.update(|st| {
        let (request, argv) = st.command_due()?;
        st.command_started(
            request,
            argv.clone(),
            out_rel.display().to_string(),
            fsutil::now_unix(),
        );
        Some((request, argv))
    })?;
    let Some((request, argv)) = due.value else {
        return Ok(None);
    };
    let status = execute_logged(&argv, &ctx.root.path(&out_rel));
    ctx.update(|st| st.command_finished(request, status, fsutil::now_unix()))?;
    Ok(Some(status))
}

/// Longest line passed to our stdout in one piece (a longer one is split).
const MAX_LINE: usize = 64 * 1024;

/// Runs argv with stdout+stderr into one pipe, drained to its end whatever
/// it carries: the bytes go unchanged to `out_file`, and line by line,
/// decoded lossily (a latin-1 byte becomes U+FFFD), to our stdout (the
/// journal). Neither a byte that is not UTF-8 nor a stdout that is gone
/// (EPIPE) stops the draining, so the command never dies of SIGPIPE.
/// Returns the exit code, 128+signal, or 127 when it cannot start.
fn execute_logged(argv: &[String], out_file: &Path) -> i32 {
    let mut file = open_output(out_file).ok();
    fn to_file(file: &mut Option<std::fs::File>, bytes: &[u8]) {
        if let Some(f) = file.as_mut() {
            let _ = f.write_all(bytes);
        }
    }
    fn to_journal(line: &[u8]) {
        let mut out = io::stdout().lock();
        let _ = out.write_all(String::from_utf8_lossy(line).as_bytes());
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    }
    let say = |file: &mut Option<std::fs::File>, msg: String| {
        to_journal(msg.as_bytes());
        to_file(file, format!("{msg}\n").as_bytes());
    };
    let (reader, writer) = match io::pipe() {
        Ok(p) => p,
        Err(e) => {
            say(&mut file, format!("umm: cannot create a pipe: {e}"));
            return 127;
        }
    };
    let writer2 = match writer.try_clone() {
        Ok(w) => w,
        Err(e) => {
            say(&mut file, format!("umm: cannot duplicate the pipe: {e}"));
            return 127;
        }
    };
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer2)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            say(&mut file, format!("umm: cannot start {:?}: {e}", argv[0]));
            return 127;
        }
    };
    let mut reader = reader;
    let mut buf = vec![0u8; 8192];
    let mut line: Vec<u8> = Vec::new();
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // Cannot happen on a pipe we own; say so rather than spin.
                say(&mut file, format!("umm: reading the command's output: {e}"));
                break;
            }
        };
        let chunk = &buf[..n];
        to_file(&mut file, chunk);
        for part in chunk.split_inclusive(|b| *b == b'\n') {
            line.extend_from_slice(part);
            if line.last() == Some(&b'\n') {
                line.pop();
                to_journal(&line);
                line.clear();
            } else if line.len() >= MAX_LINE {
                to_journal(&line);
                line.clear();
            }
        }
    }
    if !line.is_empty() {
        to_journal(&line);
    }
    match child.wait() {
        Ok(s) => exit_code(s),
        Err(_) => 127,
    }
}

/// `command.out`: root's alone (0600, also when an older file was readable),
/// never followed if it is a link.
fn open_output(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(f)
}

pub fn exit_code(s: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    s.code()
        .or_else(|| s.signal().map(|n| 128 + n))
        .unwrap_or(127)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use umm_core::decision::Reason;
    use umm_core::state::Request;
    use umm_testsupport::FakeRoot;

    /// Boot `id` of the fake root: a reboot clears `/run`.
    fn boot(f: &FakeRoot, id: &str) -> Ctx {
        f.clear_run();
        f.set_boot_id(id);
        Ctx::load(Root::new(f.path()))
    }

    fn seed(c: &Ctx, st: State) {
        state::update(&c.root, c.state_dir(), |s| *s = st).unwrap();
    }

    #[test]
    fn crash_loop_then_clean_shutdown() {
        let d = FakeRoot::new();
        // Three boots that each crash (nothing closes them).
        for (i, b) in ["b1", "b2", "b3"].iter().enumerate() {
            let c = boot(&d, b);
            let (dec, _) = record(&c, Some("normal")).unwrap();
            assert_eq!(dec, Decision::Normal);
            let st = state::read(&c.root, c.state_dir()).state;
            assert_eq!(st.unclean_boots, i as u32, "after recording {b}");
        }
        // The fourth boot: the generator would now decide reboot-loop.
        let c = boot(&d, "b4");
        let (dec, _) = this_boot_decision(&c, None);
        assert_eq!(dec, Decision::Maintenance(Reason::RebootLoop));
        record(&c, Some(&dec.token())).unwrap();
        assert!(d.p("run/motd.d/50-umm").exists());
        assert!(fs::read_to_string(d.p("run/issue.d/50-umm.issue"))
            .unwrap()
            .contains("umm off"));
        // A clean shutdown in maintenance mode holds the count.
        assert!(!close(&c).unwrap());
        assert_eq!(state::read(&c.root, c.state_dir()).state.unclean_boots, 3);
        // ... so the next boot is maintenance again.
        let c = boot(&d, "b5");
        assert_eq!(
            this_boot_decision(&c, None).0,
            Decision::Maintenance(Reason::RebootLoop)
        );
    }

    #[test]
    fn record_is_kept_across_reload_and_clean_shutdown_resets() {
        let d = FakeRoot::new();
        let c = boot(&d, "b1");
        let st = State {
            unclean_boots: 2,
            ..State::default()
        };
        seed(&c, st);
        record(&c, Some("normal")).unwrap();
        assert_eq!(
            state::read_runtime(&c.root).recorded,
            Some(Decision::Normal)
        );
        // Without the generator's env, a second run finds the marker.
        assert_eq!(this_boot_decision(&c, None).0, Decision::Normal);
        assert!(close(&c).unwrap());
        assert_eq!(state::read(&c.root, c.state_dir()).state.unclean_boots, 0);
    }

    #[test]
    fn corrupt_state_is_moved_aside_and_boot_recorded() {
        let d = FakeRoot::new();
        let c = boot(&d, "b1");
        d.write("var/lib/umm/state", "garbage = [");
        let (_, notes) = record(&c, Some("normal")).unwrap();
        assert!(notes.iter().any(|n| n.contains("moved aside")), "{notes:?}");
        let st = state::read(&c.root, c.state_dir());
        assert_eq!(st.problem, None);
        assert_eq!(st.state.open_boot.unwrap().boot_id, "b1");
    }

    #[test]
    fn scheduled_command_runs_once_per_request() {
        let d = FakeRoot::new();
        let c = boot(&d, "b1");
        let proof = d.p("proof");
        let st = State {
            request: Some(Request {
                requested_at: 7,
                requested_by: "root".into(),
                command: Some(vec![
                    "sh".into(),
                    "-c".into(),
                    format!(
                        "echo out; echo err >&2; echo x >> {}; exit 3",
                        proof.display()
                    ),
                ]),
            }),
            ..State::default()
        };
        seed(&c, st);
        assert_eq!(run_command(&c).unwrap(), Some(3));
        assert_eq!(
            run_command(&c).unwrap(),
            None,
            "must not run twice for one request"
        );
        assert_eq!(fs::read_to_string(&proof).unwrap(), "x\n");
        let r = state::read(&c.root, c.state_dir())
            .state
            .command_result
            .unwrap();
        assert_eq!((r.request, r.exit_status), (7, Some(3)));
        let out = fs::read_to_string(d.p("var/lib/umm/command.out")).unwrap();
        assert!(out.contains("out\n") && out.contains("err\n"), "{out:?}");
    }

    /// Issue 10 finding 8: command.out was created 0644 (world-readable),
    /// although `umm status` shows the output to root only.
    #[test]
    fn the_command_output_is_root_s_alone() {
        use std::os::unix::fs::MetadataExt;
        let d = FakeRoot::new();
        let c = boot(&d, "b1");
        let out = d.p("var/lib/umm/command.out");
        for (at, old) in [(1, None), (2, Some(0o644))] {
            if let Some(mode) = old {
                d.write_mode(
                    "var/lib/umm/command.out",
                    "an older, readable output\n",
                    mode,
                );
            }
            let st = State {
                request: Some(Request {
                    requested_at: at,
                    requested_by: "root".into(),
                    command: Some(vec!["echo".into(), "secret".into()]),
                }),
                ..State::default()
            };
            seed(&c, st);
            assert_eq!(run_command(&c).unwrap(), Some(0));
            assert_eq!(
                fs::metadata(&out).unwrap().mode() & 0o7777,
                0o600,
                "request {at}"
            );
            assert_eq!(fs::read_to_string(&out).unwrap(), "secret\n");
        }
    }

    #[test]
    fn missing_command_reports_127() {
        let d = FakeRoot::new();
        let c = boot(&d, "b1");
        let st = State {
            request: Some(Request {
                requested_at: 1,
                requested_by: "root".into(),
                command: Some(vec!["/nonexistent/cmd".into()]),
            }),
            ..State::default()
        };
        seed(&c, st);
        assert_eq!(run_command(&c).unwrap(), Some(127));
    }
}
