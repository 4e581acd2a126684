//! Runs the real `umm-generator` binary on fake roots (`tests/cases/<name>/root`)
//! with the command line in `cmdline`, and compares its output dirs with
//! `expected/{normal,early}`: file contents byte for byte, symlink targets as
//! strings (never followed). `expect-log` lines must appear in its log.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use umm_testsupport::FakeRoot;

const BIN: &str = env!("CARGO_BIN_EXE_umm-generator");

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases")
}

/// `path -> target` for links, `path: content` for files; `.keep` ignored.
fn listing(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            let ft = e.file_type().unwrap();
            if ft.is_symlink() {
                out.push(format!("{rel} -> {}", fs::read_link(&p).unwrap().display()));
            } else if ft.is_dir() {
                walk(base, &p, out);
            } else if rel != ".keep" {
                out.push(format!("{rel}:\n{}", fs::read_to_string(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

struct Run {
    out: Output,
    normal: PathBuf,
    early: PathBuf,
    _tmp: tempfile::TempDir,
}

fn run_generator(root: &Path, cmdline: &str, args: Option<Vec<PathBuf>>) -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let (normal, early, late) = (
        tmp.path().join("normal"),
        tmp.path().join("early"),
        tmp.path().join("late"),
    );
    for d in [&normal, &early, &late] {
        fs::create_dir(d).unwrap();
    }
    let args = args.unwrap_or_else(|| vec![normal.clone(), early.clone(), late.clone()]);
    let out = Command::new(BIN)
        .args(&args)
        .env("UMM_ROOT", root)
        .env("SYSTEMD_PROC_CMDLINE", cmdline)
        .env_remove("SYSTEMD_IN_INITRD")
        .env_remove("SYSTEMD_SCOPE")
        .env_remove("UMM_LOG_LEVEL")
        .output()
        .unwrap();
    Run {
        out,
        normal,
        early,
        _tmp: tmp,
    }
}

#[test]
fn golden_cases() {
    let mut names: Vec<_> = fs::read_dir(cases_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert!(
        names.len() >= 10,
        "expected the golden cases in {}",
        cases_dir().display()
    );
    let mut failures = Vec::new();
    for case in names {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let root = FakeRoot::copy_of(&case.join("root"));
        let state_before = fs::read(root.path().join("var/lib/umm/state")).ok();
        let cmdline = fs::read_to_string(case.join("cmdline")).unwrap();
        let r = run_generator(root.path(), cmdline.trim_end(), None);
        let log = String::from_utf8_lossy(&r.out.stderr).to_string();
        if r.out.status.code() != Some(0) {
            failures.push(format!("{name}: exit {:?}\n{log}", r.out.status));
            continue;
        }
        for (got, want) in [(&r.normal, "normal"), (&r.early, "early")] {
            let (g, w) = (listing(got), listing(&case.join("expected").join(want)));
            if g != w {
                failures.push(format!(
                    "{name}: {want} dir differs\n got: {g:#?}\nwant: {w:#?}\nlog: {log}"
                ));
            }
        }
        if let Ok(expect) = fs::read_to_string(case.join("expect-log")) {
            for line in expect.lines().filter(|l| !l.is_empty()) {
                if !log.contains(line) {
                    failures.push(format!("{name}: log lacks {line:?}:\n{log}"));
                }
            }
        }
        if fs::read(root.path().join("var/lib/umm/state")).ok() != state_before {
            failures.push(format!("{name}: the generator modified the state file"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn wrong_argument_count_exits_2() {
    for n in [0usize, 2, 4] {
        let args: Vec<String> = (0..n).map(|i| format!("/tmp/x{i}")).collect();
        let out = Command::new(BIN)
            .args(&args)
            .env("UMM_ROOT", "/nonexistent")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{n} args");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("expected 1 or 3 directory arguments")
        );
    }
}

#[test]
fn one_argument_puts_everything_in_that_dir() {
    let root = FakeRoot::copy_of(&cases_dir().join("request/root"));
    let tmp = tempfile::tempdir().unwrap();
    let r = run_generator(root.path(), "", Some(vec![tmp.path().to_path_buf()]));
    assert_eq!(r.out.status.code(), Some(0));
    assert_eq!(
        fs::read_link(tmp.path().join("default.target")).unwrap(),
        PathBuf::from("/usr/lib/systemd/system/umm.target")
    );
    assert!(tmp
        .path()
        .join("umm-boot.service.d/50-decision.conf")
        .exists());
}

#[test]
fn unwritable_early_dir_boots_normally_with_consistent_output() {
    let root = FakeRoot::copy_of(&cases_dir().join("request/root"));
    let tmp = tempfile::tempdir().unwrap();
    let normal = tmp.path().join("normal");
    fs::create_dir(&normal).unwrap();
    // The early "dir" is a regular file: every write there fails.
    let early = tmp.path().join("early");
    fs::write(&early, "").unwrap();
    let r = run_generator(
        root.path(),
        "",
        Some(vec![normal.clone(), early.clone(), tmp.path().join("late")]),
    );
    assert_eq!(
        r.out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.out.stderr)
    );
    assert!(String::from_utf8_lossy(&r.out.stderr).contains("booting normally"));
    assert_eq!(
        listing(&normal)
            .iter()
            .filter(|l| l.contains("umm.target.wants"))
            .count(),
        0,
        "no half-made maintenance output: {:?}",
        listing(&normal)
    );
    let dropin = fs::read_to_string(normal.join("umm-boot.service.d/50-decision.conf")).unwrap();
    assert!(dropin.contains("UMM_DECISION=normal"), "{dropin}");
}

#[test]
fn unwritable_normal_dir_leaves_no_output_and_exits_0() {
    let root = FakeRoot::copy_of(&cases_dir().join("request/root"));
    let tmp = tempfile::tempdir().unwrap();
    let normal = tmp.path().join("normal");
    fs::write(&normal, "").unwrap();
    let early = tmp.path().join("early");
    fs::create_dir(&early).unwrap();
    let r = run_generator(
        root.path(),
        "",
        Some(vec![normal, early.clone(), tmp.path().join("late")]),
    );
    assert_eq!(r.out.status.code(), Some(0));
    assert!(
        listing(&early).is_empty(),
        "partial output left: {:?}",
        listing(&early)
    );
}

#[test]
fn does_nothing_in_the_initrd() {
    let root = FakeRoot::copy_of(&cases_dir().join("request/root"));
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg(tmp.path())
        .env("UMM_ROOT", root.path())
        .env("SYSTEMD_PROC_CMDLINE", "umm=1")
        .env("SYSTEMD_IN_INITRD", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(listing(tmp.path()).is_empty());
}
