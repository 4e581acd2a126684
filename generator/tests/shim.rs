//! The PID-1 pre-stage on fake roots: the real binary runs as `umm-init`
//! with `UMM_ROOT=<dir>`, where the init candidates are test scripts that
//! record which one ran, with which arguments and which `UMM_DECISION`.
//! Proves that it always ends in an exec of an init, in the documented
//! order, and that it hands on a decision only when it could take one.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};
use umm_testsupport::FakeRoot;

const BIN: &str = env!("CARGO_BIN_EXE_umm-generator");

/// A root booted with `cmdline`, with a state directory.
fn fake(cmdline: &str) -> FakeRoot {
    let f = FakeRoot::booted("boot-1", Some(cmdline));
    f.mkdir("var/lib/umm");
    f
}

/// What these tests do on a fake root.
trait Shim {
    fn init(&self, rel: &str);
    fn run(&self, args: &[&str]) -> (Output, String);
    fn marker(&self) -> Option<String>;
}

impl Shim for FakeRoot {
    /// An init that records its name, arguments and UMM_DECISION, then exits 0.
    fn init(&self, rel: &str) {
        let out = self.p("ran");
        self.script(
            rel,
            &format!(
                "{{ echo 'init={rel}'; for a in \"$@\"; do echo \"arg=$a\"; done; \
                 echo \"UMM_DECISION=${{UMM_DECISION-unset}}\"; }} > {}",
                out.display()
            ),
        );
    }

    fn run(&self, args: &[&str]) -> (Output, String) {
        let out = Command::new(BIN)
            .arg0("/usr/sbin/umm-init")
            .args(args)
            .env("UMM_ROOT", self.path())
            .env_remove("SYSTEMD_PROC_CMDLINE")
            .env_remove("SYSTEMD_VIRTUALIZATION")
            .env_remove("UMM_DECISION")
            .output()
            .unwrap();
        let ran = fs::read_to_string(self.p("ran")).unwrap_or_default();
        (out, ran)
    }

    fn marker(&self) -> Option<String> {
        fs::read_to_string(self.p("run/umm/decision")).ok()
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn normal_boot_hands_on_normal_and_keeps_arguments() {
    let f = fake("root=/dev/vda ro quiet");
    f.init("sbin/init");
    let (o, ran) = f.run(&["S", "--foo"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        ran,
        "init=sbin/init\narg=S\narg=--foo\nUMM_DECISION=normal\n"
    );
    let m = f.marker().unwrap();
    assert!(m.starts_with("decision=normal\nboot_id=boot-1\n"), "{m}");
}

#[test]
fn cmdline_request_is_handed_on() {
    let f = fake("root=/dev/vda umm=1");
    f.init("sbin/init");
    let (_, ran) = f.run(&[]);
    assert_eq!(ran, "init=sbin/init\nUMM_DECISION=maintenance:cmdline\n");
    assert!(f
        .marker()
        .unwrap()
        .starts_with("decision=maintenance:cmdline\n"));
}

#[test]
fn persisted_request_is_handed_on() {
    let f = fake("root=/dev/vda");
    f.init("sbin/init");
    f.write(
        "var/lib/umm/state",
        "version = 1\n[request]\nrequested_at = 5\nrequested_by = \"root\"\n",
    );
    let (_, ran) = f.run(&[]);
    assert_eq!(ran, "init=sbin/init\nUMM_DECISION=maintenance:requested\n");
}

#[test]
fn configured_init_comes_first() {
    let f = fake("umm.init=/usr/lib/sysvinit/init umm");
    f.init("sbin/init");
    f.init("usr/lib/sysvinit/init");
    let (_, ran) = f.run(&["3"]);
    assert_eq!(
        ran,
        "init=usr/lib/sysvinit/init\narg=3\nUMM_DECISION=maintenance:cmdline\n"
    );
}

#[test]
fn missing_configured_init_falls_back_to_sbin_init() {
    let f = fake("umm.init=/nonexistent/init");
    f.init("sbin/init");
    f.init("lib/systemd/systemd");
    let (_, ran) = f.run(&[]);
    assert_eq!(ran, "init=sbin/init\nUMM_DECISION=normal\n");
}

#[test]
fn then_systemd_which_gets_only_the_marker() {
    let f = fake("umm.init=/nonexistent/init umm=1");
    f.init("lib/systemd/systemd");
    let (o, ran) = f.run(&["--system"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        ran,
        "init=lib/systemd/systemd\narg=--system\nUMM_DECISION=unset\n"
    );
    assert!(f
        .marker()
        .unwrap()
        .starts_with("decision=maintenance:cmdline\n"));
}

#[test]
fn sbin_init_linked_to_systemd_gets_no_environment() {
    let f = fake("umm=1");
    f.init("lib/systemd/systemd");
    fs::create_dir_all(f.p("sbin")).unwrap();
    symlink("../lib/systemd/systemd", f.p("sbin/init")).unwrap();
    let (_, ran) = f.run(&[]);
    assert_eq!(ran, "init=lib/systemd/systemd\nUMM_DECISION=unset\n");
}

#[test]
fn non_executable_and_self_are_skipped() {
    let f = fake("umm.init=/sbin/umm-init");
    // /sbin/umm-init is this binary: exec'ing it would loop.
    fs::create_dir_all(f.p("sbin")).unwrap();
    symlink(BIN, f.p("sbin/umm-init")).unwrap();
    f.write("sbin/init", "not executable");
    f.init("bin/sh");
    let (o, ran) = f.run(&[]);
    let err = stderr(&o);
    assert_eq!(ran, "init=bin/sh\nUMM_DECISION=normal\n", "{err}");
    assert!(err.contains("/sbin/init: not an executable file"), "{err}");
}

#[test]
fn corrupt_state_execs_unchanged_without_decision() {
    let f = fake("umm=1");
    f.init("sbin/init");
    f.write("var/lib/umm/state", "version = 1\nunclean_boots = [oops\n");
    let (o, ran) = f.run(&["S"]);
    assert_eq!(ran, "init=sbin/init\narg=S\nUMM_DECISION=unset\n");
    assert!(stderr(&o).contains("corrupt"), "{}", stderr(&o));
    assert_eq!(f.marker(), None);
    assert!(
        f.p("var/lib/umm/state").exists(),
        "the pre-stage must not move files"
    );
}

#[test]
fn corrupt_config_execs_unchanged_without_decision() {
    let f = fake("");
    f.init("sbin/init");
    f.write("etc/umm/umm.toml", "enabled = [\n");
    let (o, ran) = f.run(&[]);
    assert_eq!(ran, "init=sbin/init\nUMM_DECISION=unset\n");
    assert!(stderr(&o).contains("not valid TOML"), "{}", stderr(&o));
    assert_eq!(f.marker(), None);
}

#[test]
fn unwritable_run_execs_unchanged() {
    let f = fake("umm=1");
    f.init("sbin/init");
    f.write("run", "a file where a directory should be");
    let (o, ran) = f.run(&[]);
    assert_eq!(ran, "init=sbin/init\nUMM_DECISION=unset\n");
    assert!(stderr(&o).contains("cannot write"), "{}", stderr(&o));
}

#[test]
fn state_dir_not_mounted_yet_leaves_the_decision_for_later() {
    let f = fake("");
    f.init("sbin/init");
    fs::remove_dir_all(f.p("var")).unwrap();
    let (o, ran) = f.run(&[]);
    assert_eq!(ran, "init=sbin/init\nUMM_DECISION=unset\n");
    assert!(stderr(&o).contains("umm boot record"), "{}", stderr(&o));
    assert_eq!(f.marker(), None);
}

#[test]
fn broken_init_file_moves_on_to_the_next() {
    let f = fake("");
    // Executable but not runnable (bad interpreter): exec fails with ENOENT.
    f.write("sbin/init", "#!/nonexistent/interpreter\n");
    fs::set_permissions(f.p("sbin/init"), fs::Permissions::from_mode(0o755)).unwrap();
    f.init("lib/systemd/systemd");
    let (o, ran) = f.run(&[]);
    assert_eq!(ran, "init=lib/systemd/systemd\nUMM_DECISION=unset\n");
    assert!(
        stderr(&o).contains("cannot execute /sbin/init"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn no_init_at_all_fails_loudly() {
    let f = fake("");
    let (o, ran) = f.run(&[]);
    assert!(!o.status.success());
    assert_eq!(ran, "");
    assert!(
        stderr(&o).contains("no working init found"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn generator_mode_is_unchanged_under_its_own_name() {
    // Under its own name and not PID 1 it is still the generator.
    let o = Command::new(BIN).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

// ---- the dracut pre-pivot hook: `umm-init --initrd-decide <sysroot>` ----

/// Runs the initramfs mode with `initramfs` as its own root (its /proc and
/// /run) and `sysroot` as the real root.
fn initrd_decide(initramfs: &FakeRoot, sysroot: &FakeRoot) -> Output {
    Command::new(BIN)
        .arg0("/usr/sbin/umm-init")
        .arg("--initrd-decide")
        .arg(sysroot.path())
        .env("UMM_ROOT", initramfs.path())
        .env_remove("SYSTEMD_PROC_CMDLINE")
        .env_remove("SYSTEMD_VIRTUALIZATION")
        .output()
        .unwrap()
}

#[test]
fn initramfs_decides_against_the_real_root_and_counts_the_boot() {
    let initramfs = fake("root=/dev/vda rw");
    initramfs.set_boot_id("boot-3");
    let real = fake("this is not read");
    // Two unclean boots counted, the third (boot-2) never closed: reboot-loop.
    real.write(
        "var/lib/umm/state",
        "version = 1\nunclean_boots = 2\n[open_boot]\nboot_id = \"boot-2\"\nstarted = 1\n",
    );
    let o = initrd_decide(&initramfs, &real);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = initramfs.marker().unwrap();
    assert!(
        m.starts_with("decision=maintenance:reboot-loop\nboot_id=boot-3\n")
            && m.ends_with("by=initramfs\n"),
        "{m}"
    );
    assert!(
        real.marker().is_none(),
        "nothing written to the real root's /run"
    );
    let st = fs::read_to_string(real.p("var/lib/umm/state")).unwrap();
    assert!(st.contains("unclean_boots = 3"), "{st}");
    assert!(
        !st.contains("open_boot"),
        "maintenance: nothing watched\n{st}"
    );
    assert!(stderr(&o).contains("boot counted"), "{}", stderr(&o));
}

#[test]
fn initramfs_honours_rd_umm_and_a_normal_boot_is_watched() {
    let initramfs = fake("root=/dev/vda rd.umm=1");
    let real = fake("");
    let o = initrd_decide(&initramfs, &real);
    assert!(
        initramfs
            .marker()
            .unwrap()
            .starts_with("decision=maintenance:cmdline\n"),
        "{}",
        stderr(&o)
    );
    let initramfs = fake("root=/dev/vda");
    initrd_decide(&initramfs, &real);
    assert!(initramfs.marker().unwrap().starts_with("decision=normal\n"));
    let st = fs::read_to_string(real.p("var/lib/umm/state")).unwrap();
    assert!(st.contains("boot_id = \"boot-1\""), "{st}");
}

#[test]
fn initramfs_with_corrupt_state_hands_nothing_on() {
    let initramfs = fake("umm=1");
    let real = fake("");
    real.write("var/lib/umm/state", "garbage [");
    let o = initrd_decide(&initramfs, &real);
    assert!(o.status.success());
    assert_eq!(initramfs.marker(), None);
    assert_eq!(
        fs::read_to_string(real.p("var/lib/umm/state")).unwrap(),
        "garbage [",
        "left for umm boot record to move aside"
    );
}

#[test]
fn by_hand_on_the_real_root_does_nothing() {
    let o = Command::new(BIN)
        .arg0("/usr/sbin/umm-init")
        .env_remove("UMM_ROOT")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("PID-1 pre-stage"), "{}", stderr(&o));
}
