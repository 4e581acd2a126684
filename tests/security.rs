//! Issue 10 through the real `umm` binary on fake roots (`UMM_ROOT`): the
//! scheduled command's output, hook trust, odd files where `umm status` and
//! `umm on` read, config errors that must not echo the file, a closed
//! stdout, words before `--`, and what a panic exits with. Every run has a
//! deadline: a hang is a failure, not a stuck test. Runs as root.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use umm_testsupport::FakeRoot;

const UMM: &str = env!("CARGO_BIN_EXE_umm");
const DEADLINE: Duration = Duration::from_secs(20);

/// A fake root with a boot id, a command line and this boot recorded.
struct Root {
    dir: FakeRoot,
    rec: tempfile::TempDir,
}

impl Root {
    fn new() -> Root {
        umm_testsupport::require_root();
        let r = Root {
            dir: FakeRoot::booted("b1", Some("quiet")),
            rec: tempfile::tempdir().unwrap(),
        };
        r.file("/run/umm/boot", "decision=normal\nboot_id=b1\n");
        r
    }

    fn at(&self, abs: &str) -> PathBuf {
        self.dir.p(abs)
    }

    fn dir_0755(&self, abs: &str) -> PathBuf {
        self.dir.mkdir(abs)
    }

    fn file(&self, abs: &str, text: &str) -> PathBuf {
        let _ = fs::remove_file(self.at(abs));
        self.dir.write(abs, text)
    }

    fn script(&self, abs: &str, body: &str) -> PathBuf {
        let p = self.file(abs, &format!("#!/bin/sh\n{body}\n"));
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn fifo(&self, abs: &str) {
        let p = self.at(abs);
        self.dir_0755(Path::new(abs).parent().unwrap().to_str().unwrap());
        let _ = fs::remove_file(&p);
        let c = CString::new(p.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    }

    fn state(&self) -> String {
        fs::read_to_string(self.at("/var/lib/umm/state")).unwrap_or_default()
    }

    fn umm(&self, args: &[&str]) -> Command {
        let mut c = Command::new(UMM);
        c.args(args)
            .env("UMM_ROOT", self.dir.path())
            .env("UMM_FAKE_REBOOT", self.rec.path().join("reboot"))
            .env("UMM_FAKE_SYSTEMD", self.rec.path().join("systemd"))
            .env_remove("SYSTEMD_PROC_CMDLINE")
            .env_remove("UMM_FAKE_PANIC")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut c = self.umm(args);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        bounded(c)
    }
}

/// Runs `c` to its end, or fails the test after DEADLINE; with 1 GiB of
/// address space, so that reading a device fails the test, not the machine.
fn bounded(mut c: Command) -> Output {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 1 << 30,
                rlim_max: 1 << 30,
            };
            libc::setrlimit(libc::RLIMIT_AS, &lim);
            Ok(())
        });
    }
    let mut child = c.spawn().unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!("hung for more than {DEADLINE:?}: {}", text(&o.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[track_caller]
fn exits(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        text(&o.stdout),
        text(&o.stderr)
    );
}

fn request_with(r: &Root, argv: &str) {
    r.file(
        "/var/lib/umm/state",
        &format!(
            "version = 1\n[request]\nrequested_at = 5\nrequested_by = \"t\"\ncommand = {argv}\n"
        ),
    );
}

// ---- finding 1: the scheduled command's output ----

/// A latin-1 byte stopped the reader: the command died of SIGPIPE (141)
/// half-way and command.out was cut there. Now every byte is kept and the
/// command runs to its end.
#[test]
fn a_non_utf8_byte_does_not_kill_the_scheduled_command() {
    let r = Root::new();
    let script = "printf 'caf\\351\\n'; i=0; while [ $i -lt 3000 ]; do echo \"line $i\"; i=$((i+1)); done; echo done >&2";
    request_with(
        &r,
        &format!(
            "[\"sh\", \"-c\", \"{}\"]",
            script.replace('\\', "\\\\").replace('"', "\\\"")
        ),
    );
    let o = r.run(&["boot", "run-command"]);
    exits(&o, 0);
    let st = r.state();
    assert!(st.contains("exit_status = 0"), "{st}");
    let out = fs::read(r.at("/var/lib/umm/command.out")).unwrap();
    assert!(out.starts_with(b"caf\xe9\n"), "the byte is kept as it was");
    let out = text(&out);
    assert!(
        out.contains("line 2999\ndone\n"),
        "output cut: {} bytes",
        out.len()
    );
    // The journal (our stdout) gets it decoded lossily.
    assert!(
        text(&o.stdout).contains("caf\u{fffd}\nline 0\n"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn run_command_reports_the_commands_failure() {
    let r = Root::new();
    request_with(&r, "[\"sh\", \"-c\", \"echo going; exit 3\"]");
    let o = r.run(&["boot", "run-command"]);
    exits(&o, 1);
    assert!(
        text(&o.stderr).contains("the scheduled command failed with exit status 3"),
        "{}",
        text(&o.stderr)
    );
    assert!(r.state().contains("exit_status = 3"));
}

// ---- finding 3: hook trust ----

fn hooks_refused(r: &Root, want: &str) {
    let o = r.run(&["on", "--no-reboot"]);
    exits(&o, 1);
    assert!(text(&o.stderr).contains(want), "{}", text(&o.stderr));
    assert!(!r.at("/ran").exists(), "a hook ran");
    assert!(!r.state().contains("[request]"), "requested anyway");
}

#[test]
fn a_hook_linked_into_a_user_owned_directory_is_refused() {
    let r = Root::new();
    let ran = r.at("/ran").display().to_string();
    r.script("/home/mallory/hook", &format!("touch {ran}"));
    std::os::unix::fs::chown(r.at("/home/mallory"), Some(65534), None).unwrap();
    r.dir_0755("/etc/umm/hooks/pre-on.d");
    // Relative, so that it resolves inside the fake root for any reader.
    symlink(
        "../../../../home/mallory/hook",
        r.at("/etc/umm/hooks/pre-on.d/10-x"),
    )
    .unwrap();
    hooks_refused(&r, "home/mallory above it is owned by uid 65534");
}

#[test]
fn a_group_writable_hooks_directory_is_refused() {
    let r = Root::new();
    let ran = r.at("/ran").display().to_string();
    r.script("/etc/umm/hooks/pre-on.d/10-x", &format!("touch {ran}"));
    fs::set_permissions(r.at("/etc/umm/hooks"), fs::Permissions::from_mode(0o775)).unwrap();
    hooks_refused(
        &r,
        "hooks above it is writable by group or others (mode 0775)",
    );
}

#[test]
fn every_hook_is_checked_before_the_first_one_runs() {
    let r = Root::new();
    let ran = r.at("/ran").display().to_string();
    r.script("/etc/umm/hooks/pre-on.d/10-fine", &format!("touch {ran}"));
    let bad = r.script("/etc/umm/hooks/pre-on.d/20-bad", "true");
    fs::set_permissions(bad, fs::Permissions::from_mode(0o757)).unwrap();
    hooks_refused(&r, "20-bad");
}

// ---- finding 6: odd files where umm status and umm on read ----

#[test]
fn fifos_where_umm_reads_do_not_hang_status_or_on() {
    for abs in [
        "/var/lib/umm/state",
        "/etc/umm/umm.toml",
        "/etc/umm/umm.toml.d/10-x.toml",
        "/run/umm/boot",
        "/proc/sys/kernel/random/boot_id",
        "/var/lib/umm/command.out",
    ] {
        let r = Root::new();
        if abs.ends_with("command.out") {
            r.file(
                "/var/lib/umm/state",
                "version = 1\n[command_result]\nrequest = 1\ncommand = [\"true\"]\nstarted = 1\noutput_file = \"/var/lib/umm/command.out\"\n",
            );
        }
        r.fifo(abs);
        let o = r.run(&["status", "--json"]);
        exits(&o, 0);
        if abs.starts_with("/etc") || abs.ends_with("state") {
            assert!(
                text(&o.stdout).contains("FIFO (named pipe)"),
                "{abs}: {}",
                text(&o.stdout)
            );
        }
        let o = r.run(&["on", "--no-reboot"]);
        exits(&o, 0);
        assert!(r.state().contains("[request]"), "{abs}");
    }
}

#[test]
fn a_state_linked_to_dev_zero_is_refused() {
    let r = Root::new();
    r.dir_0755("/var/lib/umm");
    symlink("/dev/zero", r.at("/var/lib/umm/state")).unwrap();
    let o = r.run(&["status", "--json"]);
    exits(&o, 0);
    assert!(
        text(&o.stdout).contains("/var/lib/umm/state: it is a symbolic link"),
        "{}",
        text(&o.stdout)
    );
}

// ---- finding 9: config errors do not echo the file ----

#[test]
fn config_errors_in_status_do_not_echo_the_file() {
    let r = Root::new();
    r.file(
        "/etc/umm/umm.toml",
        "SECRET_TOKEN_abc123xyz\npassword = \"hunter2\"\n",
    );
    r.file(
        "/etc/umm/umm.toml.d/10-x.toml",
        "counter_reset_time = \"hunter2\"\n\"s3cr3t-as-a-key with spaces\" = 1\n",
    );
    r.file("/etc/umm.conf", "");
    for args in [&["status", "--json"][..], &["status"]] {
        let o = r.run(args);
        exits(&o, 0);
        let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
        assert!(
            all.contains("/etc/umm/umm.toml: not valid TOML, file ignored: line 1, column"),
            "{all}"
        );
        assert!(all.contains("key 'counter_reset_time'"), "{all}");
        for secret in ["abc123xyz", "hunter2", "s3cr3t"] {
            assert!(!all.contains(secret), "{secret} echoed: {all}");
        }
    }
}

// ---- finding 13 and 10: stdout, usage, panics ----

#[test]
fn a_closed_stdout_does_not_abort_umm_on() {
    let r = Root::new();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut c = r.umm(&["on", "--no-reboot"]);
    c.stdout(writer).stderr(Stdio::piped());
    let o = bounded(c);
    exits(&o, 0);
    assert!(r.state().contains("[request]"));
}

#[test]
fn words_before_the_double_dash_get_a_hint() {
    let r = Root::new();
    let o = r.run(&["on", "apt-get", "upgrade"]);
    exits(&o, 2);
    assert!(
        text(&o.stderr).contains("after '--', e.g. 'umm on -- apt-get upgrade'"),
        "{}",
        text(&o.stderr)
    );
    assert!(!r.state().contains("[request]"));
}

#[test]
fn a_panic_exits_70_never_a_documented_status() {
    let r = Root::new();
    let o = bounded({
        let mut c = r.umm(&["status"]);
        c.env("UMM_FAKE_PANIC", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    });
    exits(&o, 70);
    assert!(
        text(&o.stderr).contains("internal error (a bug"),
        "{}",
        text(&o.stderr)
    );
}
