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
    /// `--check-holidays` and today is in the holiday calendar.
    Holiday = 11,
    /// Outside every reboot window, before this node's turn in it, or too
    /// late to finish inside it; nothing was taken in Consul.
    OutsideWindow = 12,
    /// rebootmgr panicked (a bug): EX_SOFTWARE, outside both ranges, so a
    /// panic never looks like a documented outcome. The abort phase ran
    /// first when the panic happened while holding a slot.
    Internal = 70,
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

/// The exit codes as `--help` lists them (the table in docs/rebootmgr.md;
/// rebootmgr/tests/help.rs checks they agree).
pub const HELP: &str = "\
Exit codes (below 100: retried by the timer; 100 and above: an operator has to look):
    0  ok                  rebooted, post-boot phase finished, dry run passed, or nothing to do
    1  error               unexpected local error
    2  checks failed       a relevant service check blocks
    3  member not alive    a Consul member is failed or leaving
    4  lock busy           all slots of the group are taken
    5  lock lost           the slot or session was lost before the commitment
    6  Consul unreachable  no answer, or an unexpected one; nothing was changed
    7  already running     another rebootmgr holds /run/rebootmgr.lock
    8  reboot pending      post-boot run before the reboot happened
    9  in umm maintenance  the slot is held by umm's coordinated maintenance
   10  quorum at risk      this voting Consul server may not go down now
   11  holiday             --check-holidays and today is in /etc/rebootmgr/holidays
   12  outside window      not inside a reboot window (or not this node's turn, or too late in it)
   70  internal error      rebootmgr panicked (a bug)
  100  task failed         a pre- or post-boot task exited non-zero
  101  node disabled       config \"enabled\" is false
  102  stop flag           a stop flag applies
  103  did not reboot      the reboot was issued > 15 min ago, the boot id did not change
  104  not configured      node config missing or invalid, the node not in Consul's catalog, or rebootmgr.toml invalid
  105  task timed out      a task exceeded --task-timeout (the node is disabled)
  106  task refused        a task file is unsafe or not executable
  107  reboot failed       maintenance or the reboot command failed; rolled back
  108  cleanup failed      post-boot: maintenance off or slot release failed
  109  Consul refused      HTTP 403 (ACL token missing or lacking rights)
  110  usage               bad command line
Details: docs/rebootmgr.md, or the rebootmgr documentation installed with it.";

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
            ConsulError::Config { .. } => Exit::NotConfigured,
            _ => Exit::ConsulUnreachable,
        };
        Abort::new(exit, e.to_string())
    }
}
