//! rebootmgr's exit codes and the error that carries one.

use std::fmt;
use umm_coord::consul::ConsulError;

/// Exit codes. Below 100: nothing to do, or try again later (the timer will).
/// 100 and above: an operator has to look. Documented in docs/rebootmgr.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Error = 1,
    ChecksFailed = 2,
    MemberNotAlive = 3,
    LockBusy = 4,
    LockLost = 5,
    ConsulUnreachable = 6,
    AlreadyRunning = 7,
    RebootPending = 8,
    InUmmMaintenance = 9,
    QuorumAtRisk = 10,
    TaskFailed = 100,
    NodeDisabled = 101,
    StopFlag = 102,
    DidNotReboot = 103,
    NotConfigured = 104,
    TaskTimedOut = 105,
    TaskRefused = 106,
    RebootFailed = 107,
    CleanupFailed = 108,
    ConsulRefused = 109,
    Usage = 110,
}

impl Exit {
    pub fn code(self) -> i32 {
        self as i32
    }

    /// Failures while undoing always need an operator: a retryable code
    /// becomes `TaskFailed`.
    pub fn max_severity(self) -> Exit {
        if self.code() >= 100 {
            self
        } else {
            Exit::TaskFailed
        }
    }
}

/// Why a run ended without doing its job.
#[derive(Debug)]
pub struct Abort {
    pub exit: Exit,
    pub message: String,
}

impl Abort {
    pub fn new(exit: Exit, message: impl Into<String>) -> Abort {
        Abort {
            exit,
            message: message.into(),
        }
    }
}

impl fmt::Display for Abort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (exit {})", self.message, self.exit.code())
    }
}

impl std::error::Error for Abort {}

impl From<ConsulError> for Abort {
    fn from(e: ConsulError) -> Abort {
        let exit = match &e {
            ConsulError::Http { status: 403, .. } => Exit::ConsulRefused,
            _ => Exit::ConsulUnreachable,
        };
        Abort::new(exit, e.to_string())
    }
}
