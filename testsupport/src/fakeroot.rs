//! A fake root for `UMM_ROOT` (and `Root::new` in unit tests): a temporary
//! directory laid out like `/`, with directories created 0755 and files at
//! fixed modes whatever the umask, so the trust rule (`perms.rs`: root-owned,
//! not group/world-writable) sees what a real root-owned tree shows. The one
//! place every package's tests build their trees.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Fails the test unless it runs as root: the trust checks need root-owned files.
#[track_caller]
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    assert!(
        unsafe { libc::geteuid() } == 0,
        "these tests create root-owned files: run them as root"
    );
}

/// Creates `dir` and its missing parents, mode 0755 whatever the umask.
pub fn mkdirs(dir: &Path) {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
}

pub struct FakeRoot {
    dir: tempfile::TempDir,
}

impl Default for FakeRoot {
    fn default() -> Self {
        FakeRoot::new()
    }
}

impl FakeRoot {
    /// A root holding a copy of `tree` (a checked-in case): directories 0755,
    /// files 0644, symlinks copied as links (the checkout's umask must not
    /// matter).
    pub fn copy_of(tree: &Path) -> FakeRoot {
        fn copy(from: &Path, to: &Path) {
            mkdirs(to);
            for e in fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
                let e = e.expect("dir entry");
                let (src, dst) = (e.path(), to.join(e.file_name()));
                let ft = e.file_type().expect("file type");
                if ft.is_symlink() {
                    std::os::unix::fs::symlink(fs::read_link(&src).expect("readlink"), &dst)
                        .expect("symlink");
                } else if ft.is_dir() {
                    copy(&src, &dst);
                } else {
                    fs::copy(&src, &dst).expect("copy");
                    fs::set_permissions(&dst, fs::Permissions::from_mode(0o644)).expect("chmod");
                }
            }
        }
        let f = FakeRoot::new();
        copy(tree, f.path());
        f
    }

    /// An empty root (mode 0755).
    pub fn new() -> FakeRoot {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        FakeRoot { dir }
    }

    /// A root with this boot's id (`/proc/sys/kernel/random/boot_id`) and,
    /// when given, a kernel command line (`/proc/cmdline`).
    pub fn booted(boot_id: &str, cmdline: Option<&str>) -> FakeRoot {
        let f = FakeRoot::new();
        f.set_boot_id(boot_id);
        if let Some(line) = cmdline {
            f.set_cmdline(line);
        }
        f
    }

    /// The root directory itself (what `UMM_ROOT` is set to).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path of the running system inside this root: `/etc/x` and `etc/x`
    /// both name `<root>/etc/x`.
    pub fn p(&self, path: &str) -> PathBuf {
        self.dir.path().join(path.trim_start_matches('/'))
    }

    /// Creates a directory (and its parents), 0755.
    pub fn mkdir(&self, path: &str) -> PathBuf {
        let p = self.p(path);
        mkdirs(&p);
        p
    }

    /// Creates a directory (parents 0755) and gives it exactly `mode`
    /// (e.g. 0775 or 1777 to play a directory umm must not trust).
    pub fn mkdir_mode(&self, path: &str, mode: u32) -> PathBuf {
        let p = self.mkdir(path);
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod");
        p
    }

    /// Writes a file, mode 0644 (parents created 0755).
    pub fn write(&self, path: &str, text: &str) -> PathBuf {
        self.write_mode(path, text, 0o644)
    }

    /// Writes a file with exactly `mode` (parents created 0755).
    pub fn write_mode(&self, path: &str, text: &str, mode: u32) -> PathBuf {
        let p = self.p(path);
        mkdirs(p.parent().expect("a file below the root"));
        fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod");
        p
    }

    /// Writes an executable `#!/bin/sh` script (0755) with `body`.
    pub fn script(&self, path: &str, body: &str) -> PathBuf {
        self.write_mode(path, &format!("#!/bin/sh\n{body}\n"), 0o755)
    }

    /// The file's text, or `None` when it cannot be read.
    pub fn read(&self, path: &str) -> Option<String> {
        fs::read_to_string(self.p(path)).ok()
    }

    pub fn set_boot_id(&self, id: &str) {
        self.write("/proc/sys/kernel/random/boot_id", &format!("{id}\n"));
    }

    pub fn set_cmdline(&self, line: &str) {
        self.write("/proc/cmdline", &format!("{line}\n"));
    }

    /// What a reboot does to the tree: `/run` (a tmpfs) is gone.
    pub fn clear_run(&self) {
        let _ = fs::remove_dir_all(self.p("/run"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn modes_are_fixed_whatever_the_umask() {
        // SAFETY: umask only changes this process's file-creation mask.
        let old = unsafe { libc::umask(0o002) };
        let f = FakeRoot::booted("b1", Some("quiet"));
        let file = f.write("/etc/umm/umm.toml", "x = 1\n");
        unsafe { libc::umask(old) };
        let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(f.path()), 0o755);
        assert_eq!(mode(&f.p("etc/umm")), 0o755);
        assert_eq!(mode(&file), 0o644);
        assert_eq!(f.read("proc/cmdline").as_deref(), Some("quiet\n"));
        assert_eq!(f.p("/a/b"), f.p("a/b"));
    }
}
