//! The one trust rule for every file umm or rebootmgr executes or trusts
//! (hooks, tasks, config, state, the runtime markers): the file and every
//! directory on the way to it, from the root down, must be owned by root and
//! writable by nobody else. Otherwise a local user who can write one of them
//! could put another file (or directory) in its place and have it run or
//! believed as root.
//!
//! The rule is applied to what was opened, not to a path that is looked up
//! again later: [`crate::fsutil`] walks from the root one component at a time
//! (never following a link without resolving it inside the root, never
//! re-resolving a checked prefix) and calls [`check_stat`] on each descriptor
//! it holds. What is then read or executed is that descriptor. See
//! docs/security.md, "Trusted files".

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsafeFile {
    /// The file that was asked for (as on the running system).
    pub path: PathBuf,
    /// What breaks the rule: the file itself or a directory above it.
    pub culprit: PathBuf,
    pub problem: String,
}

impl fmt::Display for UnsafeFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refusing {}: {} (fix with: chown root:root {p} && chmod go-w {p})",
            self.path.display(),
            self.problem,
            p = self.culprit.display()
        )
    }
}

impl std::error::Error for UnsafeFile {}

/// Which link of the chain a [`check_stat`] call is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// The file that is read or run.
    File,
    /// A directory between the root and the file (the root included).
    Dir,
}

/// The trust rule itself: root-owned and not writable by group or others.
/// [`check_stat`] explains a failure; this is the cheap test a reader runs
/// on every link of a path at boot.
pub fn stat_trusted(st: &libc::stat) -> bool {
    st.st_uid == 0 && st.st_mode & 0o022 == 0
}

/// Root-owned and not writable by group or others. `culprit` is the path of
/// what `st` describes, `path` the file asked for.
pub fn check_stat(
    st: &libc::stat,
    path: &Path,
    culprit: &Path,
    link: Link,
) -> Result<(), UnsafeFile> {
    if stat_trusted(st) {
        return Ok(());
    }
    let what = match link {
        Link::File => "it".to_string(),
        Link::Dir => format!("the directory {} above it", culprit.display()),
    };
    let fail = |problem: String| UnsafeFile {
        path: path.to_path_buf(),
        culprit: culprit.to_path_buf(),
        problem,
    };
    if st.st_uid != 0 {
        return Err(fail(format!(
            "{what} is owned by uid {}, not root",
            st.st_uid
        )));
    }
    // A sticky bit (as on /tmp) is no exception: anything in such a
    // directory is the threat model's "not trusted".
    if st.st_mode & 0o022 != 0 {
        return Err(fail(format!(
            "{what} is writable by group or others (mode {:04o})",
            st.st_mode & 0o7777
        )));
    }
    Ok(())
}

/// The rule for a directory umm writes a trusted file into (a file it
/// creates is root's, so the directory is what remains), by path (the write
/// side): owned by root and writable by nobody else. The readers check the
/// whole chain on what they open; this is the writers' guard against the
/// commonest mistake (a state dir created group-writable).
pub fn check_trusted_dir(dir: &Path) -> Result<(), UnsafeFile> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(dir).map_err(|e| UnsafeFile {
        path: dir.to_path_buf(),
        culprit: dir.to_path_buf(),
        problem: format!("cannot stat the directory: {e}"),
    })?;
    // SAFETY: stat is plain old data; all-zero is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    st.st_uid = md.uid();
    st.st_mode = md.mode();
    check_stat(&st, dir, dir, Link::File).map_err(|mut e| {
        e.problem = format!("the directory {}", e.problem.trim_start_matches("it "));
        e
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(uid: u32, mode: u32) -> libc::stat {
        // SAFETY: stat is plain old data; all-zero is a valid value.
        let mut s: libc::stat = unsafe { std::mem::zeroed() };
        s.st_uid = uid;
        s.st_mode = mode;
        s
    }

    #[test]
    fn accepts_root_owned_and_refuses_writable() {
        let (f, d) = (Path::new("/etc/umm/hooks/x"), Path::new("/etc/umm"));
        check_stat(&st(0, 0o100755), f, f, Link::File).unwrap();
        check_stat(&st(0, 0o40755), f, d, Link::Dir).unwrap();

        let e = check_stat(&st(0, 0o100775), f, f, Link::File).unwrap_err();
        assert!(e.to_string().contains("writable by group or others"), "{e}");
        assert!(e.to_string().contains("/etc/umm/hooks/x"), "{e}");

        let e = check_stat(&st(65534, 0o100755), f, f, Link::File).unwrap_err();
        assert!(e.to_string().contains("owned by uid 65534"), "{e}");

        let e = check_stat(&st(0, 0o41777), f, d, Link::Dir).unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("the directory /etc/umm above it is writable") && s.contains("mode 1777"),
            "{s}"
        );
        assert!(s.contains("chmod go-w /etc/umm)"), "{s}");
    }
}
