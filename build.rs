//! The git revision for `--version` (umm and rebootmgr; rebootmgr/Cargo.toml
//! points here). From `UMM_GIT_REV` when set (a build from a tarball), else
//! `git rev-parse`; without either, `--version` is the crate version alone.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let o = Command::new("git").args(args).output().ok()?;
    let s = String::from_utf8(o.stdout).ok()?.trim().to_string();
    (o.status.success() && !s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=UMM_GIT_REV");
    let rev = std::env::var("UMM_GIT_REV")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| {
            // Rebuild when HEAD moves: HEAD itself and the branch it points to.
            for p in ["HEAD", "packed-refs"] {
                if let Some(path) = git(&["rev-parse", "--git-path", p]) {
                    println!("cargo:rerun-if-changed={path}");
                }
            }
            if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
                if let Some(path) = git(&["rev-parse", "--git-path", &r]) {
                    println!("cargo:rerun-if-changed={path}");
                }
            }
            git(&["rev-parse", "--short=12", "HEAD"])
        });
    let version = env!("CARGO_PKG_VERSION");
    let long = match rev {
        Some(r) => format!("{version} (git {r})"),
        None => version.to_string(),
    };
    println!("cargo:rustc-env=UMM_LONG_VERSION={long}");
}
