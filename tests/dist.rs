//! `dist/` is the install tree (docs/install-layout.md): every file of the
//! top-level folders a reader looks in (`units/`, `upstart/`, `initscripts/`,
//! `dracut/`, `grub.d/`) is reachable from it through its relative links, so
//! nothing is forgotten by scripts/install.sh or the package; and every entry
//! of `dist/` resolves, either inside the repository or, for a link such as
//! `usr/sbin/umm-init`, to the install path of one of the built binaries.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// The folders whose files are installed through `dist/`. (`generator/` is a
/// crate: what it installs is the binary, at one of `BINARIES`.)
const FOLDERS: &[&str] = &["units", "upstart", "initscripts", "dracut", "grub.d"];

/// Where the binaries are installed (not in `dist/`: the build adds them).
const BINARIES: &[&str] = &[
    "usr/sbin/umm",
    "usr/sbin/rebootmgr",
    "usr/lib/systemd/system-generators/umm-generator",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.map(|e| e.unwrap()) {
        let p = e.path();
        let t = e.file_type().unwrap();
        if t.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// `rel` (a link's target) applied to the directory `base`, without touching the disk.
fn lexical_join(base: &Path, rel: &Path) -> Option<PathBuf> {
    let mut parts: Vec<_> = base.components().collect();
    for c in rel.components() {
        match c {
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir => {}
            c => parts.push(c),
        }
    }
    Some(parts.iter().collect())
}

/// Everything wrong with `root/dist` against `root`'s folders; empty when it is right.
fn problems(root: &Path) -> Vec<String> {
    let root = root.canonicalize().unwrap();
    let dist = root.join("dist");
    let mut problems = Vec::new();
    // Walk dist/ following links, remembering which real files it reaches.
    let mut reached = BTreeSet::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in fs::read_dir(dist.join(&rel)).unwrap() {
            let e = e.unwrap();
            let rel = rel.join(e.file_name());
            let path = dist.join(&rel);
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&path).unwrap();
                if target.is_absolute() {
                    problems.push(format!(
                        "dist/{}: absolute link to {} (links are relative, so dist/ works from any checkout)",
                        rel.display(),
                        target.display()
                    ));
                    continue;
                }
                let installed = lexical_join(rel.parent().unwrap(), &target);
                let to_binary = installed
                    .as_ref()
                    .is_some_and(|p| BINARIES.iter().any(|b| Path::new(b) == p));
                match path.canonicalize() {
                    Ok(real) if real.starts_with(&root) => {}
                    Ok(real) => problems.push(format!(
                        "dist/{}: resolves outside the repository, to {}",
                        rel.display(),
                        real.display()
                    )),
                    Err(_) if to_binary => continue,
                    Err(_) => {
                        problems.push(format!(
                            "dist/{}: dangling link to {} (neither a file of the repository nor a binary's install path)",
                            rel.display(),
                            target.display()
                        ));
                        continue;
                    }
                }
            }
            let real = path.canonicalize().unwrap();
            if real.is_dir() {
                stack.push(rel);
            } else {
                reached.insert(real);
            }
        }
    }
    for folder in FOLDERS {
        let mut files = Vec::new();
        files_under(&root.join(folder), &mut files);
        for f in files {
            if !reached.contains(&f.canonicalize().unwrap()) {
                problems.push(format!(
                    "{}: not reachable from dist/ (link it at its install path)",
                    f.strip_prefix(&root).unwrap().display()
                ));
            }
        }
    }
    problems
}

#[test]
fn every_file_of_the_top_level_folders_is_installed_from_dist_and_every_link_resolves() {
    let p = problems(&repo());
    assert!(
        p.is_empty(),
        "dist/ is not the install tree:\n{}",
        p.join("\n")
    );
}

#[test]
fn the_check_finds_a_forgotten_file_and_a_dangling_link() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    for d in ["units", "grub.d", "dist/usr/lib/systemd", "dist/usr/sbin"] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    fs::write(r.join("units/a.service"), "").unwrap();
    fs::write(r.join("grub.d/55_umm"), "").unwrap();
    std::os::unix::fs::symlink("../../../../units", r.join("dist/usr/lib/systemd/system")).unwrap();
    std::os::unix::fs::symlink(
        "../lib/systemd/system-generators/umm-generator",
        r.join("dist/usr/sbin/umm-init"),
    )
    .unwrap();
    std::os::unix::fs::symlink("../lib/nothing", r.join("dist/usr/sbin/gone")).unwrap();
    let p = problems(r);
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(
        p[0].contains("dist/usr/sbin/gone") && p[0].contains("dangling"),
        "{p:#?}"
    );
    assert!(p[1].starts_with("grub.d/55_umm: not reachable"), "{p:#?}");
}

#[test]
fn install_sh_installs_each_binary_at_its_path() {
    let script = fs::read_to_string(repo().join("scripts/install.sh")).unwrap();
    for b in BINARIES {
        assert!(
            script.contains(&format!("\"$d/{b}\"")),
            "scripts/install.sh does not install {b}"
        );
    }
}
