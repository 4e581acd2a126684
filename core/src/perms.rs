//! The one safety rule for every file umm or rebootmgr executes or trusts
//! (hooks, tasks, config, state): it must be owned by root and writable by
//! nobody else, and so must the directory that holds it. Otherwise any local
//! user who can write it could run code as root at the next transition.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsafeFile {
    pub path: PathBuf,
    pub problem: String,
}

impl fmt::Display for UnsafeFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refusing {}: {} (fix with: chown root:root {p} && chmod go-w {p})",
            self.path.display(),
            self.problem,
            p = self.path.display()
        )
    }
}

impl std::error::Error for UnsafeFile {}

fn check_one(path: &Path, what: &str) -> Result<(), UnsafeFile> {
    let md = std::fs::metadata(path).map_err(|e| UnsafeFile {
        path: path.to_path_buf(),
        problem: format!("cannot stat {what}: {e}"),
    })?;
    if md.uid() != 0 {
        return Err(UnsafeFile {
            path: path.to_path_buf(),
            problem: format!("{what} is owned by uid {}, not root", md.uid()),
        });
    }
    if md.mode() & 0o022 != 0 {
        return Err(UnsafeFile {
            path: path.to_path_buf(),
            problem: format!(
                "{what} is writable by group or others (mode {:04o})",
                md.mode() & 0o7777
            ),
        });
    }
    Ok(())
}

/// Checks `path` (following symlinks) and the directory that contains it.
pub fn check_trusted(path: &Path) -> Result<(), UnsafeFile> {
    check_one(path, "file")?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // A sticky directory (like /tmp) is the one exception sudo also makes
        // no exception for; keep it simple and strict.
        check_one(dir, "its directory").map_err(|mut e| {
            e.problem = format!("{} (directory {})", e.problem, dir.display());
            e.path = path.to_path_buf();
            e
        })?;
    }
    Ok(())
}

/// The rule for a directory umm writes a trusted file into (a file it
/// creates is root's, so the directory is what remains): owned by root and
/// writable by nobody else — what [`check_trusted`] asks of a file's directory.
pub fn check_trusted_dir(dir: &Path) -> Result<(), UnsafeFile> {
    check_one(dir, "directory")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn running_as_root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    #[test]
    fn accepts_root_owned_and_refuses_writable() {
        assert!(
            running_as_root(),
            "these tests create root-owned files: run them as root"
        );
        let d = umm_testsupport::FakeRoot::new();
        let f = d.script("hook", "");
        check_trusted(&f).unwrap();

        fs::set_permissions(&f, fs::Permissions::from_mode(0o775)).unwrap();
        let e = check_trusted(&f).unwrap_err();
        assert!(e.to_string().contains("writable by group or others"), "{e}");
        assert!(e.to_string().contains("hook"), "{e}");

        fs::set_permissions(&f, fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(&f, Some(65534), None).unwrap();
        let e = check_trusted(&f).unwrap_err();
        assert!(e.to_string().contains("owned by uid 65534"), "{e}");

        std::os::unix::fs::chown(&f, Some(0), None).unwrap();
        fs::set_permissions(d.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_trusted(&f).unwrap_err();
        assert!(e.to_string().contains("directory"), "{e}");
    }
}
