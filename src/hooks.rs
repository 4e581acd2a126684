//! umm's pre-transition hooks: `/etc/umm/hooks/pre-on.d/` and
//! `/etc/umm/hooks/pre-off.d/`, run with the shared task runner (lexical
//! order, trust check, timeout with SIGTERM then SIGKILL, first failure
//! stops). A failed hook aborts the transition before anything changes.

use std::path::PathBuf;
use std::time::Duration;
use umm_core::paths::{self, Root};
use umm_core::tasks::{self, TaskError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    On,
    Off,
}

impl Transition {
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::On => "on",
            Transition::Off => "off",
        }
    }

    /// The hook directory on the running system.
    pub fn dir(self) -> PathBuf {
        PathBuf::from(paths::HOOKS_DIR).join(match self {
            Transition::On => "pre-on.d",
            Transition::Off => "pre-off.d",
        })
    }
}

/// Runs the hooks for `transition`; returns how many ran. The error says
/// which hook failed and how to proceed.
pub fn run(
    root: &Root,
    transition: Transition,
    reason: &str,
    timeout: Duration,
) -> Result<usize, String> {
    let dir = transition.dir();
    let env = vec![
        (
            "UMM_TRANSITION".to_string(),
            transition.as_str().to_string(),
        ),
        ("UMM_REASON".to_string(), reason.to_string()),
    ];
    match tasks::run_dir(root, &dir, &env, timeout, tasks::DEFAULT_KILL_GRACE) {
        Ok(done) => Ok(done.len()),
        Err(e) => {
            let what = match &e {
                TaskError::Unsafe(_) => "a hook is not trusted",
                TaskError::Failed(_) => "a hook failed",
                TaskError::Io { .. } => "a hook could not be run",
                TaskError::Interrupted { .. } => "a hook was interrupted",
            };
            Err(format!(
                "pre-{t} hooks in {}: {what}: {e}; nothing was changed. Fix the hook and retry, or retry with --skip-hooks",
                transition.dir().display(),
                t = transition.as_str(),
            ))
        }
    }
}
