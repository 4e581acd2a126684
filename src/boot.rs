//! What the boot-time units do, on every init system: record this boot's
//! decision and count unclean boots, close the boot on a clean shutdown or
//! once it is stable, run the scheduled command once maintenance mode is
//! reached, and put up the maintenance banner. Exposed as `umm boot …`.

use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use umm_core::config::{self, Loaded};
use umm_core::decision::Decision;
use umm_core::fsutil;
use umm_core::inputs;
use umm_core::paths::Root;
use umm_core::state::{self, CommandResult, State};

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

    fn save(&self, st: &State) -> io::Result<()> {
        state::write(&self.root, self.state_dir(), st).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot write {}: {e}",
                    state::state_path(self.state_dir()).display()
                ),
            )
        })
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
    let g = inputs::gather(&ctx.root, false);
    (g.decision, format!("decided by umm boot record: {}", g.why))
}

/// `umm boot record`: persist this boot's decision, update the unclean-boot
/// count, write `/run/umm/boot`, and show the banner in maintenance mode.
/// Returns the decision and the messages worth logging.
pub fn record(ctx: &Ctx, env_token: Option<&str>) -> io::Result<(Decision, Vec<String>)> {
    let (decision, why) = this_boot_decision(ctx, env_token);
    let mut notes = vec![format!("this boot: {} ({why})", decision.token())];
    let read = state::read_for_update(&ctx.root, ctx.state_dir(), ctx.now);
    if let Some(p) = read.problem {
        notes.push(format!("state: {p}; starting from an empty state"));
    }
    let mut st = read.state;
    st.record_boot(&decision, &ctx.boot_id, ctx.now);
    notes.push(format!(
        "unclean boots: {} (reboot_count = {})",
        st.unclean_boots, ctx.loaded.config.reboot_count
    ));
    // The marker first: it is what keeps this boot's decision across
    // daemon-reloads even if /var turns out not to be writable.
    let marker = state::marker_text(&decision, &ctx.boot_id, ctx.now);
    fsutil::write_atomic(&ctx.root.path(state::BOOT_RECORD), marker.as_bytes(), 0o644)?;
    ctx.save(&st)?;
    if decision.is_maintenance() {
        write_banner(ctx, &decision)?;
    }
    Ok((decision, notes))
}

/// `umm boot clean` (clean shutdown) and `umm boot stable` (uptime reached
/// `counter_reset_time`): close the watched boot and reset the count. In
/// maintenance mode nothing is watched, so the count is held.
pub fn close(ctx: &Ctx) -> io::Result<bool> {
    let read = state::read_for_update(&ctx.root, ctx.state_dir(), ctx.now);
    let mut st = read.state;
    let changed = st.close_boot(&ctx.boot_id);
    if changed || read.problem.is_some() {
        ctx.save(&st)?;
    }
    Ok(changed)
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
    let mut st = state::read_for_update(&ctx.root, ctx.state_dir(), ctx.now).state;
    let Some(req) = st.request.clone() else {
        return Ok(None);
    };
    let Some(argv) = req.command.clone().filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    if st
        .command_result
        .as_ref()
        .is_some_and(|r| r.request == req.requested_at)
    {
        return Ok(None);
    }
    let out_rel: PathBuf = ctx.state_dir().join(COMMAND_OUTPUT);
    // Recorded before it starts: if the node dies meanwhile, it does not run again.
    st.command_result = Some(CommandResult {
        request: req.requested_at,
        command: argv.clone(),
        started: fsutil::now_unix(),
        finished: None,
        exit_status: None,
        output_file: out_rel.display().to_string(),
    });
    ctx.save(&st)?;
    let status = execute_logged(&argv, &ctx.root.path(&out_rel));
    let mut st = state::read_for_update(&ctx.root, ctx.state_dir(), fsutil::now_unix()).state;
    if let Some(r) = st
        .command_result
        .as_mut()
        .filter(|r| r.request == req.requested_at)
    {
        r.finished = Some(fsutil::now_unix());
        r.exit_status = Some(status);
    }
    ctx.save(&st)?;
    Ok(Some(status))
}

/// Runs argv with stdout+stderr into one pipe, copied line by line to our
/// stdout and to `out_file`. Returns the exit code, 128+signal, or 127 when
/// it cannot start.
fn execute_logged(argv: &[String], out_file: &Path) -> i32 {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(out_file)
        .ok();
    let mut emit = |line: &str| {
        println!("{line}");
        if let Some(f) = file.as_mut() {
            let _ = writeln!(f, "{line}");
        }
    };
    let (reader, writer) = match io::pipe() {
        Ok(p) => p,
        Err(e) => {
            emit(&format!("umm: cannot create a pipe: {e}"));
            return 127;
        }
    };
    let writer2 = match writer.try_clone() {
        Ok(w) => w,
        Err(e) => {
            emit(&format!("umm: cannot duplicate the pipe: {e}"));
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
            emit(&format!("umm: cannot start {:?}: {e}", argv[0]));
            return 127;
        }
    };
    for line in io::BufReader::new(reader).lines() {
        match line {
            Ok(l) => emit(&l),
            Err(_) => break,
        }
    }
    match child.wait() {
        Ok(s) => exit_code(s),
        Err(_) => 127,
    }
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
    use std::os::unix::fs::PermissionsExt;
    use umm_core::decision::Reason;
    use umm_core::state::Request;

    fn ctx(d: &Path, boot: &str) -> Ctx {
        fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
        let p = d.join("proc/sys/kernel/random");
        fs::create_dir_all(&p).unwrap();
        fs::write(p.join("boot_id"), format!("{boot}\n")).unwrap();
        Ctx::load(Root::new(d))
    }

    fn reboot(d: &Path) {
        let _ = fs::remove_dir_all(d.join("run"));
    }

    #[test]
    fn crash_loop_then_clean_shutdown() {
        let d = tempfile::tempdir().unwrap();
        // Three boots that each crash (nothing closes them).
        for (i, b) in ["b1", "b2", "b3"].iter().enumerate() {
            reboot(d.path());
            let c = ctx(d.path(), b);
            let (dec, _) = record(&c, Some("normal")).unwrap();
            assert_eq!(dec, Decision::Normal);
            let st = state::read(&c.root, c.state_dir()).state;
            assert_eq!(st.unclean_boots, i as u32, "after recording {b}");
        }
        // The fourth boot: the generator would now decide reboot-loop.
        reboot(d.path());
        let c = ctx(d.path(), "b4");
        let (dec, _) = this_boot_decision(&c, None);
        assert_eq!(dec, Decision::Maintenance(Reason::RebootLoop));
        record(&c, Some(&dec.token())).unwrap();
        assert!(d.path().join("run/motd.d/50-umm").exists());
        assert!(
            fs::read_to_string(d.path().join("run/issue.d/50-umm.issue"))
                .unwrap()
                .contains("umm off")
        );
        // A clean shutdown in maintenance mode holds the count.
        assert!(!close(&c).unwrap());
        assert_eq!(state::read(&c.root, c.state_dir()).state.unclean_boots, 3);
        // ... so the next boot is maintenance again.
        reboot(d.path());
        let c = ctx(d.path(), "b5");
        assert_eq!(
            this_boot_decision(&c, None).0,
            Decision::Maintenance(Reason::RebootLoop)
        );
    }

    #[test]
    fn record_is_kept_across_reload_and_clean_shutdown_resets() {
        let d = tempfile::tempdir().unwrap();
        let c = ctx(d.path(), "b1");
        let st = State {
            unclean_boots: 2,
            ..State::default()
        };
        state::write(&c.root, c.state_dir(), &st).unwrap();
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
        let d = tempfile::tempdir().unwrap();
        let c = ctx(d.path(), "b1");
        let f = d.path().join("var/lib/umm/state");
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(&f, "garbage = [").unwrap();
        let (_, notes) = record(&c, Some("normal")).unwrap();
        assert!(notes.iter().any(|n| n.contains("moved aside")), "{notes:?}");
        let st = state::read(&c.root, c.state_dir());
        assert_eq!(st.problem, None);
        assert_eq!(st.state.open_boot.unwrap().boot_id, "b1");
    }

    #[test]
    fn scheduled_command_runs_once_per_request() {
        let d = tempfile::tempdir().unwrap();
        let c = ctx(d.path(), "b1");
        let proof = d.path().join("proof");
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
        state::write(&c.root, c.state_dir(), &st).unwrap();
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
        let out = fs::read_to_string(d.path().join("var/lib/umm/command.out")).unwrap();
        assert!(out.contains("out\n") && out.contains("err\n"), "{out:?}");
    }

    #[test]
    fn missing_command_reports_127() {
        let d = tempfile::tempdir().unwrap();
        let c = ctx(d.path(), "b1");
        let st = State {
            request: Some(Request {
                requested_at: 1,
                requested_by: "root".into(),
                command: Some(vec!["/nonexistent/cmd".into()]),
            }),
            ..State::default()
        };
        state::write(&c.root, c.state_dir(), &st).unwrap();
        assert_eq!(run_command(&c).unwrap(), Some(127));
    }
}
