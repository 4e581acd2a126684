//! The sysvinit pieces on the host (the real boots are in tests/vm):
//! umm-sysv-setup edits an inittab reversibly and idempotently, and
//! umm-pause returns at once in a normal boot and, in maintenance mode,
//! starts ssh and a getty and blocks until /run/umm/resumed appears.
//! Runs the real `umm` binary on a fake root (`UMM_ROOT`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use umm_testsupport::FakeRoot;

const UMM: &str = env!("CARGO_BIN_EXE_umm");

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

const BOOKWORM_INITTAB: &str = "\
# /etc/inittab: init(8) configuration.
id:2:initdefault:
si::sysinit:/etc/init.d/rcS
~~:S:wait:/sbin/sulogin --force
l0:0:wait:/etc/init.d/rc 0
l1:1:wait:/etc/init.d/rc 1
l2:2:wait:/etc/init.d/rc 2
l3:3:wait:/etc/init.d/rc 3
l4:4:wait:/etc/init.d/rc 4
l5:5:wait:/etc/init.d/rc 5
l6:6:wait:/etc/init.d/rc 6
z6:6:respawn:/sbin/sulogin --force
ca:12345:ctrlaltdel:/sbin/shutdown -t1 -a -r now
1:2345:respawn:/sbin/getty --noclear 38400 tty1
";

fn setup(action: &str, root: &Path) -> String {
    let o = Command::new(repo("initscripts/umm-sysv-setup"))
        .args([action, "--root"])
        .arg(root)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    fs::read_to_string(root.join("etc/inittab")).unwrap()
}

#[test]
fn inittab_entry_is_reversible_and_idempotent() {
    let d = FakeRoot::new();
    d.mkdir("etc/init.d");
    d.write("etc/inittab", BOOKWORM_INITTAB);
    let once = setup("install", d.path());
    let lines: Vec<&str> = once.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == "um:2345:wait:/usr/lib/umm/sysvinit/umm-pause")
        .expect("entry added");
    assert!(lines[at - 1].starts_with("# umm:"));
    assert_eq!(lines[at - 2], "~~:S:wait:/sbin/sulogin --force");
    assert_eq!(lines[at + 1], "l0:0:wait:/etc/init.d/rc 0");
    assert!(d.path().join("etc/init.d/umm").exists());
    assert_eq!(setup("install", d.path()), once, "install twice = once");
    assert_eq!(setup("remove", d.path()), BOOKWORM_INITTAB);
    assert!(!d.path().join("etc/init.d/umm").exists());
    assert_eq!(setup("remove", d.path()), BOOKWORM_INITTAB);
}

/// A root booted with `cmdline`, with stand-ins for ssh and getty that
/// record they ran (the getty stays up like a real one).
fn fake(cmdline: &str) -> FakeRoot {
    let f = FakeRoot::booted("b1", Some(cmdline));
    let log = f.p("log");
    f.script(
        "etc/init.d/ssh",
        &format!("echo \"ssh $1\" >> {}", log.display()),
    );
    f.script(
        "sbin/getty",
        &format!("echo \"getty $*\" >> {}\nexec sleep 30", log.display()),
    );
    f
}

trait Pause {
    fn pause(&self) -> std::process::Child;
    fn log(&self) -> String;
}

impl Pause for FakeRoot {
    fn pause(&self) -> std::process::Child {
        Command::new(repo("initscripts/umm-pause"))
            .env("UMM_ROOT", self.path())
            .env("UMM_BIN", UMM)
            .env(
                "SYSTEMD_PROC_CMDLINE",
                fs::read_to_string(self.p("proc/cmdline")).unwrap().trim(),
            )
            .env_remove("UMM_DECISION")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
    fn log(&self) -> String {
        fs::read_to_string(self.p("log")).unwrap_or_default()
    }
}

#[test]
fn normal_boot_returns_at_once() {
    let f = fake("root=/dev/vda");
    let o = f.pause().wait_with_output().unwrap();
    assert!(o.status.success());
    let boot = fs::read_to_string(f.p("run/umm/boot")).unwrap();
    assert!(boot.starts_with("decision=normal\n"), "{boot}");
    assert_eq!(f.log(), "", "nothing started in a normal boot");
}

#[test]
fn maintenance_blocks_until_resumed() {
    let f = fake("root=/dev/vda console=ttyS0,115200 umm=1");
    let mut child = f.pause();
    // It must still be waiting a while later, with ssh and a getty up.
    let t = Instant::now();
    while !f.log().contains("getty") && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        child.try_wait().unwrap().is_none(),
        "returned before umm off"
    );
    let log = f.log();
    assert!(log.contains("ssh start\n"), "{log}");
    assert!(log.contains("getty -L 38400 ttyS0\n"), "{log}");
    assert!(fs::read_to_string(f.p("run/umm/boot"))
        .unwrap()
        .starts_with("decision=maintenance:cmdline\n"));
    // 'umm off' writes the resumed marker: the boot goes on.
    fs::write(f.p("run/umm/resumed"), "").unwrap();
    let t = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            assert!(s.success());
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "still blocked");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.contains("resuming the boot"), "{out}");
    // A later runlevel change re-runs the entry: it returns at once.
    let o = f.pause().wait_with_output().unwrap();
    assert!(o.status.success());
    assert_eq!(f.log().matches("ssh start").count(), 1);
}

#[test]
fn init_script_has_lsb_header_and_usage() {
    let text = fs::read_to_string(repo("initscripts/umm.init")).unwrap();
    for k in [
        "# Provides:          umm",
        "# Required-Start:    $local_fs",
        "# Required-Stop:     $local_fs",
        "# Default-Start:     2 3 4 5",
        "# Default-Stop:      0 6",
    ] {
        assert!(text.contains(k), "missing {k}");
    }
    let o = Command::new("sh")
        .arg(repo("initscripts/umm.init"))
        .arg("bogus")
        .output()
        .unwrap();
    // Without /usr/sbin/umm installed it exits 0 at once; with it, 3 + usage.
    assert!(o.status.code() == Some(0) || o.status.code() == Some(3));
    for s in ["umm-pause", "umm.init", "umm-sysv-setup"] {
        let st = Command::new("sh")
            .arg("-n")
            .arg(repo(&format!("initscripts/{s}")))
            .status()
            .unwrap();
        assert!(st.success(), "{s}: syntax");
    }
}

/// Issue 10, finding 6, on sysvinit's pause point: a FIFO where umm-pause
/// reads (the recorded decision, the command line) must not hang the boot.
/// Before, `grep`/`cat` blocked on it for ever.
#[test]
fn fifos_where_umm_pause_reads_do_not_hang_it() {
    let mkfifo = |p: &Path| {
        let _ = fs::remove_file(p);
        let c = std::ffi::CString::new(p.as_os_str().to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "{p:?}");
    };
    let run = |f: &FakeRoot, cmdline: &str| {
        Command::new(repo("initscripts/umm-pause"))
            .env("UMM_ROOT", f.path())
            .env("UMM_BIN", UMM)
            .env("SYSTEMD_PROC_CMDLINE", cmdline)
            .env_remove("UMM_DECISION")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let deadline = |what: &str, done: &mut dyn FnMut() -> bool| {
        let t = Instant::now();
        while !done() {
            assert!(t.elapsed() < Duration::from_secs(10), "{what}: hung");
            std::thread::sleep(Duration::from_millis(50));
        }
    };

    // A FIFO at /run/umm/boot: not read; the boot goes on.
    let f = fake("root=/dev/vda");
    fs::create_dir_all(f.p("run/umm")).unwrap();
    mkfifo(&f.p("run/umm/boot"));
    let mut child = run(&f, "root=/dev/vda");
    deadline("FIFO at /run/umm/boot", &mut || {
        child.try_wait().unwrap().is_some()
    });

    // A FIFO at /proc/cmdline in maintenance mode: the getty still comes
    // up (on tty1), then 'umm off' resumes.
    let f = fake("umm=1");
    mkfifo(&f.p("proc/cmdline"));
    let mut child = run(&f, "umm=1");
    deadline("FIFO at /proc/cmdline", &mut || {
        f.log().contains("getty -L 38400 tty1")
    });
    fs::write(f.p("run/umm/resumed"), "").unwrap();
    deadline("resume", &mut || child.try_wait().unwrap().is_some());
}
