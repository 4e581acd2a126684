//! "Is a reboot required": the trigger files on this node (Debian's, SUSE's),
//! a sentinel command (RHEL's `needs-restarting -r`: exit 1 = needed), then
//! the node's `reboot_required` key. The one place that answers it
//! (`run --check-triggers` and `status`).

use crate::exit::{Abort, Exit};
use crate::local::TRIGGER_FILES;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use umm_coord::consul::Consul;
use umm_coord::protocol::{Keys, REBOOT_REQUIRED};
use umm_core::fsutil::{self, Found};
use umm_core::paths::Root;

/// How long a sentinel command may take before it is killed (an error).
pub const SENTINEL_TIMEOUT: Duration = Duration::from_secs(120);

/// What asks for the reboot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    File(&'static str),
    /// The sentinel command exited 1 (its argv joined by spaces).
    Command(String),
    /// The node's `reboot_required` key (its full name).
    Key(String),
}

impl Trigger {
    /// As `run` logs it.
    pub fn describe(&self) -> String {
        match self {
            Trigger::File(f) => format!("file {f} exists"),
            Trigger::Command(c) => format!("command `{c}` exited 1 (reboot needed)"),
            Trigger::Key(k) => format!("key {k} exists"),
        }
    }

    /// As `status` shows it: the key by its leaf name.
    pub fn describe_short(&self) -> String {
        match self {
            Trigger::File(_) | Trigger::Command(_) => self.describe(),
            Trigger::Key(_) => format!("key {REBOOT_REQUIRED} exists"),
        }
    }
}

/// The first trigger that asks for a reboot: files, then the sentinel
/// command (when one is set), then the key.
pub fn reboot_required(
    c: &Consul,
    root: &Root,
    keys: &Keys,
    sentinel: Option<&[String]>,
) -> Result<Option<Trigger>, Abort> {
    if let Some(f) = TRIGGER_FILES.into_iter().find(|f| root.path(f).exists()) {
        return Ok(Some(Trigger::File(f)));
    }
    if let Some(argv) = sentinel.filter(|a| !a.is_empty()) {
        if sentinel_says_needed(argv, SENTINEL_TIMEOUT)? {
            return Ok(Some(Trigger::Command(argv.join(" "))));
        }
    }
    let key = keys.reboot_required();
    Ok(c.kv_get(&key)?.map(|_| Trigger::Key(key)))
}

/// Runs the sentinel: exit 1 = reboot needed, 0 = not; anything else (or a
/// program that is not an absolute, root-owned, not group/other-writable
/// file: it runs as root) is an error that needs an operator.
pub fn sentinel_says_needed(argv: &[String], timeout: Duration) -> Result<bool, Abort> {
    let fail = |m: String| Abort::new(Exit::TaskFailed, format!("trigger command: {m}"));
    let prog = Path::new(&argv[0]);
    if !prog.is_absolute() {
        return Err(fail(format!(
            "{:?} is not an absolute path; name the program in full (e.g. /usr/bin/needs-restarting)",
            argv[0]
        )));
    }
    // The trust rule on the program and every directory above it (and above
    // a link's target): only root can change what runs, so running the
    // checked path is running what was checked.
    let root = Root::from_env();
    let real = match fsutil::open_exec(&root, prog) {
        Ok(Some(Found::File(x))) => root.path(&x.real),
        Ok(Some(Found::Dir)) => return Err(fail(format!("{} is a directory", argv[0]))),
        Ok(None) => return Err(fail(format!("{} does not exist", argv[0]))),
        Err(e) => return Err(fail(e.to_string())),
    };
    let mut child = Command::new(real)
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| fail(format!("cannot run {}: {e}", argv[0])))?;
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if start.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "`{}` still running after {}; killed",
                    argv.join(" "),
                    umm_core::duration::format(timeout)
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(fail(format!("waiting for {}: {e}", argv[0]))),
        }
    };
    match status.code() {
        Some(0) => Ok(false),
        Some(1) => Ok(true),
        _ => Err(fail(format!(
            "`{}` ended with {status}; expected exit 0 (no reboot needed) or 1 (reboot needed)",
            argv.join(" ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_names_the_key_status_its_leaf() {
        let k = Trigger::Key(Keys::new("n1", None).reboot_required());
        assert_eq!(
            k.describe(),
            "key service/rebootmgr/nodes/n1/reboot_required exists"
        );
        assert_eq!(k.describe_short(), "key reboot_required exists");
        let f = Trigger::File(TRIGGER_FILES[2]);
        assert_eq!(f.describe(), "file /run/reboot-needed exists");
        let f = Trigger::File(TRIGGER_FILES[0]);
        assert_eq!(f.describe(), "file /var/run/reboot-required exists");
        assert_eq!(f.describe_short(), f.describe());
    }

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sentinel_exit_codes() {
        let sh = |code: &str| argv(&["/bin/sh", "-c", &format!("exit {code}")]);
        assert!(!sentinel_says_needed(&sh("0"), SENTINEL_TIMEOUT).unwrap());
        assert!(sentinel_says_needed(&sh("1"), SENTINEL_TIMEOUT).unwrap());
        let e = sentinel_says_needed(&sh("3"), SENTINEL_TIMEOUT).unwrap_err();
        assert_eq!(e.exit, Exit::TaskFailed);
        assert!(e.message.contains("expected exit 0"), "{e}");
        let e =
            sentinel_says_needed(&argv(&["needs-restarting", "-r"]), SENTINEL_TIMEOUT).unwrap_err();
        assert!(e.message.contains("absolute path"), "{e}");
        let e = sentinel_says_needed(&argv(&["/bin/sleep", "5"]), Duration::from_millis(200))
            .unwrap_err();
        assert!(e.message.contains("killed"), "{e}");
    }

    #[test]
    fn sentinel_must_be_trusted() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("sentinel");
        std::fs::write(&f, "#!/bin/sh\nexit 1\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = sentinel_says_needed(&argv(&[f.to_str().unwrap()]), SENTINEL_TIMEOUT).unwrap_err();
        assert!(e.message.contains("writable by group or others"), "{e}");
    }
}
