//! The init system behind `umm off` and `umm on`: resuming the paused boot
//! and rebooting. systemd is implemented here; another init system (the
//! sysvinit PID-1 shim) adds a backend behind the same trait.
//!
//! Test-only recorders (documented in umm(8), ENVIRONMENT):
//! - `UMM_FAKE_REBOOT=<file>`: a reboot appends `reboot <how>` to the file
//!   instead of rebooting.
//! - `UMM_FAKE_SYSTEMD=<file>`: every systemd call is appended to the file
//!   and answered with success. `UMM_FAKE_SYSTEMD_DEFAULT` is what
//!   GetDefaultTarget answers (default: the target `/etc/systemd/system/
//!   default.target` points to, else `multi-user.target`),
//!   `UMM_FAKE_SYSTEMD_RESULT` the job result (default `done`),
//!   `UMM_FAKE_SYSTEMD_FAILED` a comma-separated list of failed units.
//!
//! On a fake root (`UMM_ROOT`) without recorders, nothing talks to the real
//! init system: a test can never reboot the machine it runs on.

use super::CliError;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use umm_core::paths::Root;

/// How long `umm off` waits for the default target's job.
pub const RESUME_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// What resuming the boot achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resumed {
    /// The target started (e.g. multi-user.target).
    pub target: String,
    /// True when the target's job finished with `done`.
    pub reached: bool,
    /// Human-readable lines: how the target was chosen, the job result.
    pub notes: Vec<String>,
    /// Units in the failed state after the job.
    pub failed_units: Vec<String>,
}

pub trait InitSystem {
    fn name(&self) -> &'static str;
    /// Continues this boot into normal operation. Called after the state is
    /// updated and `/run/umm/resumed` written.
    fn resume(&self) -> Result<Resumed, CliError>;
    /// Reboots (returns once the reboot has been requested).
    fn reboot(&self) -> Result<String, CliError>;
}

/// Picks the backend for this run; see the module doc for the recorders.
pub fn select(root: &Root) -> Box<dyn InitSystem> {
    let fake_reboot = std::env::var_os("UMM_FAKE_REBOOT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let fake_systemd = std::env::var_os("UMM_FAKE_SYSTEMD")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let inner: Box<dyn InitSystem> = if let Some(log) = fake_systemd {
        Box::new(FakeSystemd {
            root: root.clone(),
            log,
        })
    } else if !root.is_real() {
        Box::new(Refuse)
    } else if Path::new("/run/systemd/system").is_dir() {
        Box::new(SystemdInit)
    } else {
        Box::new(OtherInit {
            upstart: is_upstart(),
        })
    };
    match fake_reboot {
        Some(log) => Box::new(FakeReboot { inner, log }),
        None => inner,
    }
}

/// systemd: over the system bus with zbus, or, without a bus daemon, through
/// `systemctl` (PID 1's private socket; see src/systemd.rs for why not zbus).
pub struct SystemdInit;

/// The four manager calls resuming needs, from either transport.
trait Manager {
    fn via(&self) -> String;
    fn reload(&self) -> Result<(), String>;
    fn default_target(&self) -> Result<String, String>;
    /// Starts `unit` (mode `replace`) and waits for its job.
    fn start_wait(&self, unit: &str) -> Result<crate::systemd::JobResult, String>;
    fn failed_units(&self) -> Result<Vec<String>, String>;
}

impl Manager for crate::systemd::Systemd {
    fn via(&self) -> String {
        self.via.to_string()
    }
    fn reload(&self) -> Result<(), String> {
        crate::systemd::Systemd::reload(self)
    }
    fn default_target(&self) -> Result<String, String> {
        crate::systemd::Systemd::default_target(self)
    }
    fn start_wait(&self, unit: &str) -> Result<crate::systemd::JobResult, String> {
        self.start_unit_wait(unit, "replace", RESUME_TIMEOUT)
    }
    fn failed_units(&self) -> Result<Vec<String>, String> {
        crate::systemd::Systemd::failed_units(self).map(|f| f.into_iter().map(|u| u.name).collect())
    }
}

/// `systemctl`, which reaches PID 1 on /run/systemd/private without a bus.
struct Systemctl {
    bus_err: String,
}

impl Manager for Systemctl {
    fn via(&self) -> String {
        format!("systemctl (PID 1's private socket; {})", self.bus_err)
    }
    fn reload(&self) -> Result<(), String> {
        systemctl(&["daemon-reload"]).map(|_| ())
    }
    fn default_target(&self) -> Result<String, String> {
        systemctl(&["get-default"])
    }
    fn start_wait(&self, unit: &str) -> Result<crate::systemd::JobResult, String> {
        // `systemctl start` waits for the job and fails unless it is done.
        Ok(crate::systemd::JobResult::Finished(
            match systemctl(&["start", "--job-mode=replace", unit]) {
                Ok(_) => "done".to_string(),
                Err(e) => format!("failed ({e})"),
            },
        ))
    }
    fn failed_units(&self) -> Result<Vec<String>, String> {
        systemctl(&[
            "list-units",
            "--failed",
            "--plain",
            "--no-legend",
            "--no-pager",
        ])
        .map(|out| {
            out.lines()
                .filter_map(|l| l.split_whitespace().next())
                .map(str::to_string)
                .collect()
        })
    }
}

impl InitSystem for SystemdInit {
    fn name(&self) -> &'static str {
        "systemd"
    }

    fn resume(&self) -> Result<Resumed, CliError> {
        match crate::systemd::Systemd::connect() {
            Ok(sd) => resume_with(&sd),
            Err(bus_err) => resume_with(&Systemctl { bus_err }),
        }
    }

    fn reboot(&self) -> Result<String, CliError> {
        crate::systemd::reboot().or_else(|bus_err| {
            // No bus daemon: PID 1's private socket, through systemctl.
            systemctl(&["start", "--job-mode=replace-irreversibly", "--no-block", "reboot.target"])
                .map(|_| format!("{bus_err}; started reboot.target with systemctl (PID 1's private socket)"))
                .map_err(|e| {
                    CliError::failed(format!(
                        "cannot reboot: {bus_err}; {e}. The request is saved: reboot by any other means to enter maintenance mode, or cancel it with 'umm off'"
                    ))
                })
        })
    }
}

/// Reload (the generator drops its override), start the real default
/// target, wait for the job, list failed units.
fn resume_with(m: &dyn Manager) -> Result<Resumed, CliError> {
    let retry = "the state is already updated: retry with 'umm off --retry' (no hooks run again)";
    let fail = |e: String| CliError::failed(format!("{e}; {retry}"));
    let mut notes = vec![format!("talking to systemd via {}", m.via())];
    m.reload().map_err(fail)?;
    let reported = m.default_target().map_err(fail)?;
    let target = real_default_target(&Root::default(), &reported, &mut notes);
    let reached = match m.start_wait(&target).map_err(fail)? {
        crate::systemd::JobResult::Finished(r) => {
            notes.push(format!("start job for {target}: {r}"));
            r == "done"
        }
        crate::systemd::JobResult::StillRunning => {
            notes.push(format!(
                "start job for {target} still running after {} min; see 'systemctl list-jobs'",
                RESUME_TIMEOUT.as_secs() / 60
            ));
            false
        }
    };
    let failed_units = m.failed_units().unwrap_or_else(|e| {
        notes.push(format!("cannot list failed units: {e}"));
        Vec::new()
    });
    Ok(Resumed {
        target,
        reached,
        notes,
        failed_units,
    })
}

/// Runs systemctl and returns its stdout, or an error with its stderr.
fn systemctl(args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new("systemctl")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run systemctl: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "systemctl {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// GetDefaultTarget must no longer name umm.target once the generator has
/// dropped its override; if it still does, use what the admin configured.
pub fn real_default_target(root: &Root, reported: &str, notes: &mut Vec<String>) -> String {
    if reported != "umm.target" && !reported.is_empty() {
        notes.push(format!("default target: {reported}"));
        return reported.to_string();
    }
    let configured = std::fs::read_link(root.path("/etc/systemd/system/default.target"))
        .ok()
        .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".target") && n != "umm.target");
    let target = configured.unwrap_or_else(|| "multi-user.target".to_string());
    notes.push(format!(
        "systemd still reports {reported:?} as the default target; starting {target} instead"
    ));
    target
}

/// Upstart listens on the abstract socket `@/com/ubuntu/upstart`.
pub fn is_upstart() -> bool {
    proc_read("/proc/net/unix").is_some_and(|t| {
        String::from_utf8_lossy(&t)
            .lines()
            .any(|l| l.ends_with(" @/com/ubuntu/upstart"))
    })
}

/// A kernel file under /proc, through the one safe reader (bounded at
/// 16 MiB: /proc/net/unix grows with the sockets; procfs files report size
/// 0). None when it is missing or unreadable.
fn proc_read(path: impl AsRef<Path>) -> Option<Vec<u8>> {
    umm_core::fsutil::read_bounded(
        &Root::new("/"),
        path.as_ref(),
        &umm_core::fsutil::Policy::KERNEL.with_max(16 << 20),
    )
    .ok()
    .flatten()
}

/// sysvinit or upstart: the paused boot step (inittab's `umm-pause`, upstart's
/// `umm-maintenance`) polls `/run/umm/resumed`, which `umm off` has already
/// written; `resume` waits until the runlevel is up.
pub struct OtherInit {
    pub upstart: bool,
}

/// The runlevel is up: the pause step (`umm boot wait`) has returned, the
/// runlevel (`runlevel`) is 2-5 and its `/etc/init.d/rc` has finished.
fn runlevel_up() -> bool {
    let mut pausing = false;
    let mut rc = false;
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(cmd) = proc_read(e.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<&[u8]> = cmd.split(|b| *b == 0).filter(|a| !a.is_empty()).collect();
            if args.len() >= 3 && args[args.len() - 2..] == [&b"boot"[..], &b"wait"[..]] {
                pausing = true;
            }
            if args.iter().any(|a| *a == b"/etc/init.d/rc") {
                rc = true;
            }
        }
    }
    if pausing || rc {
        return false;
    }
    std::process::Command::new("runlevel")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .nth(1)
                .map(str::to_string)
        })
        .is_some_and(|l| matches!(l.as_str(), "2" | "3" | "4" | "5"))
}

impl InitSystem for OtherInit {
    fn name(&self) -> &'static str {
        if self.upstart {
            "upstart"
        } else {
            "sysvinit"
        }
    }

    fn resume(&self) -> Result<Resumed, CliError> {
        let step = if self.upstart {
            "the umm-maintenance job emits `umm`, rc-sysinit starts the runlevel"
        } else {
            "the inittab entry returns, the runlevel's rc starts"
        };
        let mut notes = vec![format!("wrote /run/umm/resumed; {step}")];
        println!("waiting for the default runlevel ({}) ...", self.name());
        let start = std::time::Instant::now();
        // Two checks in a row a second apart: a pause step that has just
        // returned may not have spawned the runlevel's rc yet.
        let mut ok_in_a_row = 0;
        while start.elapsed() < RESUME_TIMEOUT {
            if runlevel_up() {
                ok_in_a_row += 1;
                if ok_in_a_row == 2 {
                    notes.push(format!(
                        "the runlevel's rc finished after {} s",
                        start.elapsed().as_secs()
                    ));
                    return Ok(Resumed {
                        target: "the default runlevel".into(),
                        reached: true,
                        notes,
                        failed_units: Vec::new(),
                    });
                }
            } else {
                ok_in_a_row = 0;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        notes.push(format!(
            "the runlevel was not up after {} s ('runlevel', 'ps ax')",
            RESUME_TIMEOUT.as_secs()
        ));
        Ok(Resumed {
            target: "the default runlevel".into(),
            reached: false,
            notes,
            failed_units: Vec::new(),
        })
    }

    fn reboot(&self) -> Result<String, CliError> {
        match std::process::Command::new("reboot").status() {
            Ok(s) if s.success() => Ok("ran 'reboot'".into()),
            Ok(s) => Err(CliError::failed(format!(
                "'reboot' failed ({s}). The request is saved: reboot by other means, or cancel it with 'umm off'"
            ))),
            Err(e) => Err(CliError::failed(format!(
                "cannot run 'reboot': {e}. The request is saved: reboot by other means, or cancel it with 'umm off'"
            ))),
        }
    }
}

/// On a fake root without recorders: never touch the real machine.
struct Refuse;

impl Refuse {
    fn err() -> CliError {
        CliError::failed(
            "UMM_ROOT points to a fake root: refusing to talk to the real init system (set UMM_FAKE_SYSTEMD and UMM_FAKE_REBOOT to record calls instead)",
        )
    }
}

impl InitSystem for Refuse {
    fn name(&self) -> &'static str {
        "none (fake root)"
    }

    fn resume(&self) -> Result<Resumed, CliError> {
        Err(Self::err())
    }

    fn reboot(&self) -> Result<String, CliError> {
        Err(Self::err())
    }
}

fn append(log: &Path, line: &str) -> Result<(), CliError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .and_then(|mut f| writeln!(f, "{line}"))
        .map_err(|e| CliError::failed(format!("cannot record to {}: {e}", log.display())))
}

/// `UMM_FAKE_SYSTEMD`: records the calls a real resume makes, in order.
struct FakeSystemd {
    root: Root,
    log: PathBuf,
}

impl InitSystem for FakeSystemd {
    fn name(&self) -> &'static str {
        "systemd (recorder)"
    }

    fn resume(&self) -> Result<Resumed, CliError> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let mut notes = vec![format!("recording systemd calls to {}", self.log.display())];
        append(&self.log, "Reload")?;
        // After the reload the generator no longer redirects: systemd
        // reports the admin's default.
        let reported = env("UMM_FAKE_SYSTEMD_DEFAULT").unwrap_or_else(|| {
            std::fs::read_link(self.root.path("/etc/systemd/system/default.target"))
                .ok()
                .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "multi-user.target".into())
        });
        append(&self.log, &format!("GetDefaultTarget {reported}"))?;
        let target = real_default_target(&self.root, &reported, &mut notes);
        let result = env("UMM_FAKE_SYSTEMD_RESULT").unwrap_or_else(|| "done".into());
        append(&self.log, "Subscribe")?;
        append(&self.log, &format!("StartUnit {target} replace {result}"))?;
        notes.push(format!("start job for {target}: {result}"));
        append(&self.log, "ListUnitsFiltered failed")?;
        let failed_units = env("UMM_FAKE_SYSTEMD_FAILED")
            .map(|s| s.split(',').map(str::to_string).collect())
            .unwrap_or_default();
        Ok(Resumed {
            target,
            reached: result == "done",
            notes,
            failed_units,
        })
    }

    fn reboot(&self) -> Result<String, CliError> {
        append(&self.log, "Reboot")?;
        Ok(format!("recorded Reboot in {}", self.log.display()))
    }
}

/// `UMM_FAKE_REBOOT`: a reboot appends a line instead.
struct FakeReboot {
    inner: Box<dyn InitSystem>,
    log: PathBuf,
}

impl InitSystem for FakeReboot {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn resume(&self) -> Result<Resumed, CliError> {
        self.inner.resume()
    }

    fn reboot(&self) -> Result<String, CliError> {
        append(&self.log, &format!("reboot via {}", self.inner.name()))?;
        Ok(format!("recorded the reboot in {}", self.log.display()))
    }
}
