//! The man pages the package installs (roff rendered by scripts/man.sh from
//! one Markdown source each) agree with the binaries: every subcommand and
//! long option in `umm --help` / `rebootmgr --help` (and each subcommand's
//! `--help`) is in the rendered page and every option its SYNOPSIS names
//! exists; umm.toml(5) names every config key; umm-init(8) is umm-generator(8);
//! and each page renders without a groff message (the check lintian makes).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use umm_testsupport::{help_subcommands, long_options, rebootmgr_bin, repo};

/// The pages, rendered once for all tests of this file.
fn pages() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let o = Command::new(repo().join("scripts/man.sh"))
            .arg(&dir)
            .output()
            .expect("scripts/man.sh");
        assert!(
            o.status.success(),
            "scripts/man.sh failed (pandoc is installed by scripts/test-deps.sh):\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        dir
    })
}

fn page(name: &str) -> PathBuf {
    let sec = name.rsplit('.').next().unwrap();
    pages().join(format!("man{sec}/{name}.gz"))
}

/// The page as plain text: no hyphenation, long lines (so an option is never split).
fn text(name: &str) -> String {
    let roff = Command::new("zcat")
        .arg(page(name))
        .output()
        .unwrap()
        .stdout;
    let mut groff = Command::new("groff")
        .args(["-t", "-man", "-Tutf8", "-rHY=0", "-rLL=250n", "-P-cbou"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("groff (groff-base)");
    use std::io::Write;
    groff.stdin.take().unwrap().write_all(&roff).unwrap();
    let o = groff.wait_with_output().unwrap();
    assert!(o.status.success());
    String::from_utf8(o.stdout).unwrap()
}

fn help(bin: &Path, args: &[&str]) -> String {
    let o = Command::new(bin).args(args).arg("--help").output().unwrap();
    assert!(o.status.success(), "{} {args:?} --help", bin.display());
    String::from_utf8(o.stdout).unwrap()
}

/// The lines of a section (its heading up to the next heading at the margin).
fn section<'a>(text: &'a str, heading: &str) -> Vec<&'a str> {
    text.lines()
        .skip_while(|l| *l != heading)
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .collect()
}

/// Every option of the binary, its subcommands' included, is in the page, and
/// every option the page's SYNOPSIS names is one the binary has.
fn agree(bin: &Path, name: &str, subcommands: &[&str]) {
    let man = text(&format!("{name}.8"));
    let top = help(bin, &[]);
    assert_eq!(help_subcommands(&top), subcommands, "{name} --help");
    let synopsis = section(&man, "SYNOPSIS");
    let mut known: Vec<String> = long_options(&top);
    for c in subcommands {
        let named = |l: &&str| {
            l.trim_start().starts_with(name)
                && l.split_whitespace()
                    .any(|w| w == *c || w == format!("[{c}]"))
        };
        assert!(
            synopsis.iter().any(named),
            "{name}(8) SYNOPSIS lacks the subcommand {c}"
        );
        known.extend(long_options(&help(bin, &[c])));
    }
    for opt in &known {
        if opt != "--help" && opt != "--version" {
            assert!(man.contains(opt.as_str()), "{name}(8) lacks {opt}");
        }
    }
    let synopsis = synopsis.join("\n");
    assert!(!synopsis.trim().is_empty(), "{name}(8) has no SYNOPSIS");
    for opt in long_options(&synopsis) {
        assert!(
            known.contains(&opt),
            "{name}(8) SYNOPSIS names {opt}, which --help does not know"
        );
    }
}

#[test]
fn umm_8_agrees_with_umm_help() {
    agree(
        Path::new(env!("CARGO_BIN_EXE_umm")),
        "umm",
        &["status", "on", "off", "enable", "disable", "host"],
    );
}

#[test]
fn rebootmgr_8_agrees_with_rebootmgr_help() {
    agree(
        &rebootmgr_bin(),
        "rebootmgr",
        &[
            "run",
            "status",
            "stop",
            "unstop",
            "release",
            "config",
            "check-config",
        ],
    );
}

#[test]
fn umm_toml_5_names_every_key_and_the_file_order() {
    let man = text("umm.toml.5");
    // A table cell may break after `_` (scripts/man.sh), so keys are looked up in the roff,
    // without those break points.
    let roff = Command::new("zcat")
        .arg(page("umm.toml.5"))
        .output()
        .unwrap()
        .stdout;
    let roff = String::from_utf8(roff).unwrap().replace("\\:", "");
    for k in umm_core::config::KEYS {
        assert!(roff.contains(k), "umm.toml(5) lacks key {k}");
    }
    let order = [
        "/usr/lib/umm/umm.toml",
        "/etc/umm.conf",
        "/etc/umm/umm.toml",
        "/run/umm/umm.toml.d/",
    ];
    let at: Vec<usize> = order
        .iter()
        .map(|f| man.find(f).unwrap_or(usize::MAX))
        .collect();
    assert!(
        at.windows(2).all(|w| w[0] < w[1]),
        "umm.toml(5) file order: {at:?}"
    );
}

#[test]
fn umm_init_8_is_umm_generator_8() {
    let link = pages().join("man8/umm-init.8.gz");
    assert_eq!(
        fs::read_link(&link).unwrap(),
        Path::new("umm-generator.8.gz")
    );
    let man = text("umm-generator.8");
    assert!(man.contains("umm-generator, umm-init - "), "{man}");
    assert!(man.contains("init=/usr/sbin/umm-init"));
}

#[test]
fn every_page_renders_without_a_groff_warning_and_carries_the_version() {
    let version = env!("CARGO_PKG_VERSION");
    for name in ["umm.8", "rebootmgr.8", "umm-generator.8", "umm.toml.5"] {
        // What lintian runs (its manpages check: 120 columns, every message counts).
        let o = Command::new("man")
            .args(["--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z"])
            .arg(page(name))
            .env("LC_ALL", "C.UTF-8")
            .env("MANWIDTH", "120")
            .output()
            .expect("man (man-db)");
        assert!(o.status.success(), "man -l {name}");
        let warnings: Vec<String> = String::from_utf8_lossy(&o.stderr)
            .lines()
            .map(str::to_string)
            .collect();
        assert!(warnings.is_empty(), "{name}: {warnings:#?}");
        let roff = Command::new("zcat")
            .arg(page(name))
            .output()
            .unwrap()
            .stdout;
        let th = String::from_utf8(roff).unwrap();
        let th = th
            .lines()
            .find(|l| l.starts_with(".TH"))
            .unwrap()
            .to_string();
        assert!(th.contains(&format!("umm {version}")), "{name}: {th}");
    }
}
