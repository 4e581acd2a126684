//! Every file umm reads or writes is named through [`Root`], so tests (and the
//! initramfs, which sees the real root under `/sysroot`) can run the real code
//! on another tree by setting `UMM_ROOT=<dir>`.

use std::path::{Path, PathBuf};

/// Well-known absolute paths (relative to the root prefix).
pub const VENDOR_CONFIG: &str = "/usr/lib/umm/umm.toml";
pub const ADMIN_CONFIG: &str = "/etc/umm/umm.toml";
pub const ADMIN_DROPIN_DIR: &str = "/etc/umm/umm.toml.d";
pub const RUNTIME_DROPIN_DIR: &str = "/run/umm/umm.toml.d";
pub const LEGACY_CONFIG: &str = "/etc/umm.conf";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/umm";
pub const RUNTIME_DIR: &str = "/run/umm";
pub const HOOKS_DIR: &str = "/etc/umm/hooks";
pub const PROC_CMDLINE: &str = "/proc/cmdline";
pub const PROC1_CMDLINE: &str = "/proc/1/cmdline";
pub const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";
pub const UPTIME: &str = "/proc/uptime";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    prefix: PathBuf,
}

impl Default for Root {
    fn default() -> Self {
        Root::new("/")
    }
}

impl Root {
    pub fn new(prefix: impl Into<PathBuf>) -> Root {
        Root {
            prefix: prefix.into(),
        }
    }

    /// `UMM_ROOT` when set and non-empty, else `/`.
    pub fn from_env() -> Root {
        match std::env::var_os("UMM_ROOT") {
            Some(v) if !v.is_empty() => Root::new(v),
            _ => Root::default(),
        }
    }

    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// Whether this is the running system's own root: the prefix is `/`
    /// however it is spelt (`/tmp/..`, `//`, a link to `/`), so a guard
    /// that must not act on the real root cannot be passed by spelling.
    pub fn is_real(&self) -> bool {
        self.prefix == Path::new("/")
            || std::fs::canonicalize(&self.prefix).is_ok_and(|p| p == Path::new("/"))
    }

    /// Maps an absolute path of the running system into this root.
    pub fn path(&self, abs: impl AsRef<Path>) -> PathBuf {
        let abs = abs.as_ref();
        let rel = abs.strip_prefix("/").unwrap_or(abs);
        self.prefix.join(rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_into_prefix() {
        let r = Root::new("/tmp/x");
        assert_eq!(
            r.path("/etc/umm/umm.toml"),
            PathBuf::from("/tmp/x/etc/umm/umm.toml")
        );
        assert_eq!(Root::default().path("/run/umm"), PathBuf::from("/run/umm"));
        assert!(Root::default().is_real());
        assert!(!r.is_real());
        // Issue 10 finding 11: any spelling of / is the real root.
        for spelt in ["/tmp/..", "//", "/.", "/proc/../"] {
            assert!(Root::new(spelt).is_real(), "{spelt}");
        }
        let d = tempfile::tempdir().unwrap();
        let link = d.path().join("to-root");
        std::os::unix::fs::symlink("/", &link).unwrap();
        assert!(Root::new(&link).is_real());
        assert!(!Root::new(d.path()).is_real());
        assert!(!Root::new("/nonexistent").is_real());
    }
}
