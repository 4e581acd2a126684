//! Every file umm, rebootmgr, the generator and umm-init read is opened by
//! the one safe helper (`umm_core::fsutil`: open_file, read_bounded,
//! read_text, list_dir, open_exec; docs/security.md, "One way to open a
//! file"). This test fails when a new `fs::read`, `fs::read_to_string`,
//! `File::open` or `.read(true)` appears in the non-test code of the crates
//! (everything above a file's first `#[cfg(test)]`), outside the allow-list
//! below, where each exception says why it is one.

use std::fs;
use std::path::{Path, PathBuf};

/// The crates' source dirs (testsupport is test code only).
const SCANNED: &[&str] = &[
    "core/src",
    "generator/src",
    "src",
    "rebootmgr/src",
    "coord/src",
    "compute/src",
];

/// What reads a file without the helper.
const PATTERNS: &[&str] = &[
    "fs::read(",
    "fs::read_to_string(",
    "File::open(",
    ".read(true)",
];

/// (file, pattern, why it is not a read the helper must do).
const ALLOWED: &[(&str, &str, &str)] = &[
    (
        "core/src/fsutil.rs",
        "File::open(",
        "opens a directory to fsync it after a rename (write side): nothing is read",
    ),
    (
        "core/src/fsutil/open.rs",
        "*",
        "the helper itself (it uses openat and fdopendir, not these)",
    ),
];

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn allowed(file: &str, pattern: &str) -> bool {
    ALLOWED
        .iter()
        .any(|(f, p, _)| *f == file && (*p == "*" || *p == pattern))
}

#[test]
fn no_file_is_read_outside_the_safe_helper() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for d in SCANNED {
        rs_files(&repo.join(d), &mut files);
    }
    assert!(files.len() > 30, "scanned only {} files", files.len());
    let mut found = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(repo).unwrap().display().to_string();
        let text = fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("#[cfg(test)]") {
                break;
            }
            if line.trim_start().starts_with("//") {
                continue;
            }
            for p in PATTERNS {
                if line.contains(p) && !allowed(&rel, p) {
                    found.push(format!("{rel}:{}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "files read without umm_core::fsutil (use read_bounded/read_text/open_file with a Policy, \
         or add an exception with its reason to ALLOWED):\n{}",
        found.join("\n")
    );
}

/// The allow-list names files that exist and patterns that still occur
/// there, so a stale exception does not hide a new read.
#[test]
fn the_allow_list_is_not_stale() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (f, p, why) in ALLOWED {
        let text = fs::read_to_string(repo.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(!why.is_empty());
        if *p != "*" {
            assert!(
                text.contains(p),
                "{f} no longer contains {p}: drop the exception"
            );
        }
    }
}
