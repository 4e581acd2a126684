//! `rebootmgr --help`: the run options once (under `run`), the exit codes
//! as documented, and a non-root run told it needs root.

use std::process::Command;
use umm_testsupport::{rebootmgr_bin, repo, FakeRoot};

fn help(args: &[&str]) -> String {
    let out = Command::new(rebootmgr_bin()).args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn run_options_once_and_exit_codes_as_documented() {
    let top = help(&["--help"]);
    let run = help(&["run", "--help"]);
    // The options, not the exit code list after them.
    let options = |h: &str| h.split("Exit codes").next().unwrap().to_string();
    let (top_opts, run_opts) = (options(&top), options(&run));
    for opt in [
        "--check-triggers",
        "--dry-run",
        "--settle",
        "--ignore-stop-flag",
        "--ignore-node-disabled",
        "--ignore-failed-checks",
        "--check-holidays",
        "--max-parallel",
    ] {
        assert!(
            !top_opts.contains(opt),
            "top-level help lists {opt}:\n{top}"
        );
        let spelled = |end: &str| run_opts.matches(&format!("{opt}{end}")).count();
        assert_eq!(
            spelled(" ") + spelled("\n"),
            1,
            "run --help lists {opt} once:\n{run}"
        );
    }
    assert!(run.contains("[alias: --dryrun]"), "{run}");
    // The config files, durations with units and reboot windows are explained.
    for want in [
        "/etc/rebootmgr/rebootmgr.toml",
        "check-config",
        "\"2min\"",
        "exit 12",
    ] {
        assert!(run.contains(want), "run --help lacks {want}:\n{run}");
    }

    // Every row of the exit code table in docs/rebootmgr.md is in both
    // helps, with its name, and nothing else is.
    let doc = std::fs::read_to_string(repo().join("docs/rebootmgr.md")).unwrap();
    let section = doc
        .split("## Exit codes")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap();
    let mut documented = Vec::new();
    for line in section.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if let (Some(code), Some(name)) = (cells.get(1), cells.get(2)) {
            if let Ok(code) = code.parse::<u32>() {
                documented.push((code, name.to_string()));
            }
        }
    }
    assert_eq!(documented.len(), 25, "{documented:?}");
    for text in [&top, &run] {
        let listed: Vec<(u32, String)> = text
            .split("Exit codes")
            .nth(1)
            .expect("exit codes in the help")
            .lines()
            .filter_map(|l| {
                let l = l.trim_start();
                let (code, rest) = l.split_once("  ")?;
                let name = rest.trim_start().split("  ").next()?.trim().to_string();
                Some((code.parse().ok()?, name))
            })
            .collect();
        let mut want = documented.clone();
        want.sort();
        let mut got = listed.clone();
        got.sort();
        assert_eq!(got, want, "help vs docs/rebootmgr.md");
    }

    // The Python spelling without a command still works.
    let out = Command::new(rebootmgr_bin())
        .args(["--node", "x", "--settle", "notanumber"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(110), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--settle"),
        "{out:?}"
    );
}

#[test]
fn a_run_without_root_says_it_needs_root() {
    let root = FakeRoot::new();
    root.mkdir("run");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(rebootmgr_bin())
        .args(["--consul", "http://127.0.0.1:9", "--node", "n1", "run"])
        .env("UMM_ROOT", root.path())
        .output()
        .expect("setpriv (util-linux)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("needs root"), "{err}");
    assert!(!err.contains("Permission denied"), "{err}");
}
