//! Issue 10 on the boot path: the real `umm-generator` binary, as the
//! generator, as `umm-init` (PID-1 pre-stage) and as the initramfs hook
//! (`--initrd-decide`), on fake roots where the files it reads are FIFOs,
//! links to a device or too large, and where its output dirs and `/run/umm`
//! hold links planted beforehand. At boot nothing may hang, crash or stop
//! the boot: every run here has a deadline and a memory limit, and must end
//! the way a normal boot ends (exit 0, or the init executed).

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use umm_testsupport::fakeroot::mkdirs;
use umm_testsupport::FakeRoot;

const BIN: &str = env!("CARGO_BIN_EXE_umm-generator");
/// Far more than any run here needs; a hang is a failure, not a stuck test.
const DEADLINE: Duration = Duration::from_secs(20);
/// Address-space limit for each run: reading /dev/zero must fail the test,
/// not exhaust the machine.
const MEMORY_LIMIT: u64 = 1 << 30;

/// Every file the boot path reads (finding 6). `/proc/1/cmdline` is read in
/// a container only, `/etc/umm.conf` only while `/etc/umm/umm.toml` is
/// missing: the fake root is set up so that each is read.
const READ_PATHS: &[&str] = &[
    "/proc/cmdline",
    "/proc/1/cmdline",
    "/proc/sys/kernel/random/boot_id",
    "/var/lib/umm/state",
    "/usr/lib/umm/umm.toml",
    "/etc/umm/umm.toml",
    "/etc/umm.conf",
    "/etc/umm/umm.toml.d/10-x.toml",
    "/run/umm/umm.toml.d/10-x.toml",
    "/run/umm/boot",
    "/run/umm/decision",
];

#[derive(Clone, Copy, Debug)]
enum Mode {
    Generator,
    Init,
    Initrd,
}

const MODES: [Mode; 3] = [Mode::Generator, Mode::Init, Mode::Initrd];

struct Fake {
    dir: FakeRoot,
    out: tempfile::TempDir,
}

impl Fake {
    fn new() -> Fake {
        umm_testsupport::require_root();
        let f = Fake {
            dir: FakeRoot::booted("boot-1", Some("root=/dev/vda umm=1")),
            out: tempfile::tempdir().unwrap(),
        };
        f.write("/proc/1/cmdline", "/sbin/init\0umm=1\0");
        f.dir.mkdir("/var/lib/umm");
        // An init for umm-init to execute, recording that it ran.
        let ran = f.ran();
        f.dir.script(
            "/sbin/init",
            &format!(
                "echo \"UMM_DECISION=${{UMM_DECISION-unset}}\" > {}",
                ran.display()
            ),
        );
        for d in ["normal", "early", "late"] {
            fs::create_dir(f.out.path().join(d)).unwrap();
        }
        f
    }

    fn p(&self, abs: &str) -> PathBuf {
        self.dir.p(abs)
    }

    fn ran(&self) -> PathBuf {
        self.out.path().join("ran")
    }

    fn normal(&self) -> PathBuf {
        self.out.path().join("normal")
    }

    fn write(&self, abs: &str, text: &str) {
        let _ = fs::remove_file(self.p(abs));
        self.dir.write(abs, text);
    }

    /// Replaces `abs` with a FIFO, or a node of another kind.
    fn node(&self, abs: &str, mode: libc::mode_t, dev: libc::dev_t) {
        let p = self.p(abs);
        mkdirs(p.parent().unwrap());
        let _ = fs::remove_file(&p);
        let c = CString::new(p.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mknod(c.as_ptr(), mode, dev) }, 0, "{p:?}");
    }

    fn link(&self, abs: &str, target: &str) {
        let p = self.p(abs);
        mkdirs(p.parent().unwrap());
        let _ = fs::remove_file(&p);
        symlink(target, &p).unwrap();
    }

    /// Runs the binary in `mode` with a deadline and a memory limit.
    fn run(&self, mode: Mode) -> Output {
        self.run_measured(mode).0
    }

    /// [`Fake::run`], and the peak memory in KiB.
    fn run_measured(&self, mode: Mode) -> (Output, i64) {
        let mut c = Command::new(BIN);
        let o = self.out.path();
        match mode {
            Mode::Generator => {
                c.args([o.join("normal"), o.join("early"), o.join("late")]);
            }
            Mode::Init => {
                c.arg0("/usr/sbin/umm-init");
            }
            Mode::Initrd => {
                c.arg("--initrd-decide").arg(self.dir.path());
            }
        }
        c.env("UMM_ROOT", self.dir.path())
            // In a container, so that /proc/1/cmdline is read.
            .env("SYSTEMD_VIRTUALIZATION", "container:test")
            .env_remove("SYSTEMD_PROC_CMDLINE")
            .env_remove("UMM_DECISION")
            .env_remove("SYSTEMD_IN_INITRD");
        run_measured(c)
    }
}

/// Output of `c`, killed and reported when it takes longer than DEADLINE.
fn run_bounded(c: Command) -> Output {
    run_measured(c).0
}

/// [`run_bounded`], and the run's peak resident memory in KiB (from
/// wait4's rusage): how a read of /dev/zero shows even when it ends in an
/// allocation error rather than a crash.
fn run_measured(mut c: Command) -> (Output, i64) {
    use std::os::unix::process::ExitStatusExt;
    let logs = tempfile::tempdir().unwrap();
    let (out, err) = (logs.path().join("out"), logs.path().join("err"));
    c.stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap());
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: MEMORY_LIMIT,
                rlim_max: MEMORY_LIMIT,
            };
            libc::setrlimit(libc::RLIMIT_AS, &lim);
            Ok(())
        });
    }
    let child = c.spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let start = Instant::now();
    let (status, rss) = loop {
        let mut status = 0;
        // SAFETY: rusage is plain data written by wait4.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: pid is our child; pointers are valid.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        if r == pid {
            break (status, ru.ru_maxrss);
        }
        assert_eq!(r, 0, "wait4: {}", std::io::Error::last_os_error());
        if start.elapsed() > DEADLINE {
            // SAFETY: plain syscalls on our child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!(
                "hung for more than {DEADLINE:?}: {:?}",
                fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(child);
    let o = Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout: fs::read(&out).unwrap(),
        stderr: fs::read(&err).unwrap(),
    };
    (o, rss)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The boot went on: the generator and the initramfs hook exited 0, the
/// pre-stage executed the init.
fn assert_boot_went_on(f: &Fake, mode: Mode, o: &Output, case: &str) {
    match mode {
        Mode::Generator | Mode::Initrd => {
            assert_eq!(o.status.code(), Some(0), "{mode:?} {case}: {}", stderr(o))
        }
        Mode::Init => assert!(
            f.ran().exists(),
            "{mode:?} {case}: the init was not executed ({:?}): {}",
            o.status,
            stderr(o)
        ),
    }
}

#[test]
fn a_fifo_at_any_path_read_at_boot_does_not_hang() {
    for &mode in &MODES {
        for &abs in READ_PATHS {
            let f = Fake::new();
            f.node(abs, libc::S_IFIFO | 0o644, 0);
            let o = f.run(mode);
            assert_boot_went_on(&f, mode, &o, abs);
            // Where the file is read at all in this mode, the log names it.
            if !stderr(&o).is_empty() && abs.starts_with("/etc") {
                assert!(
                    stderr(&o).contains("FIFO"),
                    "{mode:?} {abs}: {}",
                    stderr(&o)
                );
            }
        }
    }
}

#[test]
fn a_link_to_a_device_is_never_read() {
    for &mode in &MODES {
        for &abs in READ_PATHS {
            let f = Fake::new();
            // /dev/zero, in the fake root (where links resolve) as well as on
            // the real one (where a path-based read would go).
            f.node("/dev/zero", libc::S_IFCHR | 0o666, libc::makedev(1, 5));
            f.link(abs, "/dev/zero");
            let (o, rss_kib) = f.run_measured(mode);
            assert_boot_went_on(&f, mode, &o, abs);
            // Reading the device, even into an allocation error, takes
            // hundreds of MiB; refusing it takes a few.
            assert!(
                rss_kib < 64 * 1024,
                "{mode:?} {abs}: {rss_kib} KiB resident: /dev/zero was read"
            );
        }
    }
}

#[test]
fn an_oversized_config_is_refused_with_a_clear_error() {
    let f = Fake::new();
    f.write("/etc/umm/umm.toml", &"#".repeat(2 << 20));
    let o = f.run(Mode::Generator);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains(
            "/etc/umm/umm.toml: it is larger than 1048576 bytes, the most read from it: not used"
        ),
        "{}",
        stderr(&o)
    );
}

/// Finding 9: a config that is not TOML (here: what a link to a secret
/// would show) is reported by file, line and column, never by its text.
#[test]
fn config_errors_do_not_echo_the_file() {
    let f = Fake::new();
    f.write(
        "/etc/umm/umm.toml",
        "SECRET_TOKEN_abc123xyz\npassword: hunter2\n",
    );
    let o = f.run(Mode::Generator);
    let log = stderr(&o);
    assert!(
        log.contains("/etc/umm/umm.toml: not valid TOML, file ignored: line 1, column"),
        "{log}"
    );
    assert!(
        !log.contains("abc123xyz") && !log.contains("hunter2"),
        "{log}"
    );
}

/// Finding 6: systemd hands the generator empty output dirs; a link that is
/// already there is not ours and must not be written through.
#[test]
fn the_generator_does_not_write_through_links_in_its_output_dirs() {
    let victim = tempfile::tempdir().unwrap();
    let v = victim.path();
    fs::write(v.join("file"), "untouched\n").unwrap();
    let cases: [(&str, PathBuf); 3] = [
        ("umm-boot.service.d", v.to_path_buf()),
        ("umm.target.wants", v.to_path_buf()),
        ("umm-boot.service.d/50-decision.conf", v.join("file")),
    ];
    for (rel, target) in cases {
        let f = Fake::new();
        let at = f.normal().join(rel);
        fs::create_dir_all(at.parent().unwrap()).unwrap();
        symlink(&target, &at).unwrap();
        let o = f.run(Mode::Generator);
        assert_eq!(o.status.code(), Some(0), "{rel}: {}", stderr(&o));
        // ELOOP reads "Too many levels of symbolic links" (glibc) or
        // "Symbolic link loop" (musl).
        let log = stderr(&o).to_lowercase();
        assert!(
            log.contains("not writing through it") || log.contains("symbolic link"),
            "{rel}: {log}"
        );
        let mut left: Vec<_> = fs::read_dir(v)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["file"],
            "{rel}: something was written into the victim"
        );
        assert_eq!(fs::read_to_string(v.join("file")).unwrap(), "untouched\n");
    }
}

/// Finding 6: umm-init does not write its marker through a link at
/// /run/umm, and still starts the init.
#[test]
fn umm_init_does_not_write_through_a_linked_run_umm() {
    let victim = tempfile::tempdir().unwrap();
    let f = Fake::new();
    f.link("/run/umm", &victim.path().display().to_string());
    let o = f.run(Mode::Init);
    assert_eq!(
        fs::read_to_string(f.ran()).unwrap(),
        "UMM_DECISION=unset\n",
        "{}",
        stderr(&o)
    );
    assert!(
        fs::read_dir(victim.path()).unwrap().next().is_none(),
        "written through the link: {:?}",
        fs::read_dir(victim.path()).unwrap().collect::<Vec<_>>()
    );
    assert!(stderr(&o).contains("symbolic link"), "{}", stderr(&o));
    // The same for the initramfs hook.
    let o = f.run(Mode::Initrd);
    assert_eq!(o.status.code(), Some(0));
    assert!(fs::read_dir(victim.path()).unwrap().next().is_none());
}

/// Finding 11: any spelling of / is the real root, where umm-init run by
/// hand must refuse (not exec the init as a process that is not PID 1).
#[test]
fn umm_init_by_hand_refuses_any_spelling_of_the_real_root() {
    let f = Fake::new();
    // If the guard were passed, the init executed is this recorder (named
    // on the command line), never the machine's real init.
    let recorder = f.p("/sbin/init");
    for spelt in ["/tmp/..", "//", "/./"] {
        let mut c = Command::new(BIN);
        c.arg0("/usr/sbin/umm-init")
            .env("UMM_ROOT", spelt)
            .env(
                "SYSTEMD_PROC_CMDLINE",
                format!("umm.init={}", recorder.display()),
            )
            .env_remove("UMM_DECISION");
        let o = run_bounded(c);
        assert_eq!(o.status.code(), Some(2), "{spelt}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("does nothing when run by hand"),
            "{spelt}"
        );
        assert!(!f.ran().exists(), "{spelt}: the init was executed");
    }
}

/// Finding 13: options print the usage, exit 2 and create nothing.
#[test]
fn generator_options_print_usage_and_write_nothing() {
    for args in [&["--help"][..], &["--version"], &["-h", "a", "b"]] {
        let cwd = tempfile::tempdir().unwrap();
        let o = run_bounded({
            let mut c = Command::new(BIN);
            c.args(args).current_dir(cwd.path());
            c
        });
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains("usage: umm-generator"), "{args:?}");
        assert!(
            fs::read_dir(cwd.path()).unwrap().next().is_none(),
            "{args:?} created {:?}",
            fs::read_dir(cwd.path()).unwrap().collect::<Vec<_>>()
        );
    }
}
