//! Running a directory of operator-supplied executables (umm's hooks,
//! rebootmgr's pre/post-boot tasks) with one set of rules: lexical order,
//! trust check before each run, a timeout that also kills the task's children,
//! and the first failure stops the run.

use crate::perms;
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Grace period between SIGTERM and SIGKILL when a task overruns.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskOutcome {
    pub path: PathBuf,
    pub status: TaskStatus,
    pub duration: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    Success,
    /// Exit code, or 128 + signal number when killed by a signal.
    Failed(i32),
    TimedOut,
}

#[derive(Debug)]
pub enum TaskError {
    Unsafe(perms::UnsafeFile),
    Io {
        path: PathBuf,
        err: io::Error,
    },
    /// The first task that did not succeed; later tasks were not run.
    Failed(TaskOutcome),
    /// The caller asked to stop (e.g. rebootmgr's stop flag) while this task
    /// ran; it was terminated like a timed-out task and later tasks not run.
    Interrupted {
        path: PathBuf,
    },
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Unsafe(u) => write!(f, "{u}"),
            TaskError::Io { path, err } => write!(f, "{}: {err}", path.display()),
            TaskError::Failed(o) => match o.status {
                TaskStatus::TimedOut => write!(
                    f,
                    "task {} timed out after {:.1} s",
                    o.path.display(),
                    o.duration.as_secs_f64()
                ),
                TaskStatus::Failed(code) => {
                    write!(
                        f,
                        "task {} failed with exit status {code}",
                        o.path.display()
                    )
                }
                TaskStatus::Success => write!(f, "task {} succeeded", o.path.display()),
            },
            TaskError::Interrupted { path } => write!(f, "task {} interrupted", path.display()),
        }
    }
}

impl std::error::Error for TaskError {}

/// Names that package managers and editors leave behind, and the explicit
/// opt-out, are never run.
fn is_ignored(name: &[u8]) -> bool {
    name.first() == Some(&b'.')
        || name.last() == Some(&b'~')
        || name.ends_with(b".disabled")
        || contains(name, b".dpkg-")
        || contains(name, b".rpm")
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The executables `run_dir` would run, in order (also used by `--dry-run`
/// listings). Directories inside `dir` are not descended into.
pub fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, TaskError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => {
            return Err(TaskError::Io {
                path: dir.to_path_buf(),
                err,
            })
        }
    };
    let mut names: Vec<OsString> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|err| TaskError::Io {
            path: dir.to_path_buf(),
            err,
        })?;
        let name = entry.file_name();
        if !is_ignored(name.as_bytes()) {
            names.push(name);
        }
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let mut out = Vec::new();
    for name in names {
        let path = dir.join(&name);
        let md = std::fs::metadata(&path).map_err(|err| TaskError::Io {
            path: path.clone(),
            err,
        })?;
        if md.is_dir() {
            continue;
        }
        if !md.is_file() {
            return Err(TaskError::Io {
                path,
                err: io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
            });
        }
        out.push(path);
    }
    Ok(out)
}

/// Runs every executable regular file in `dir`; see the module doc. A missing
/// `dir` means no tasks.
pub fn run_dir(
    dir: &Path,
    env: &[(String, String)],
    timeout: Duration,
    kill_grace: Duration,
) -> Result<Vec<TaskOutcome>, TaskError> {
    run_dir_until(dir, env, timeout, kill_grace, &AtomicBool::new(false))
}

/// Like [`run_dir`], but a running task is terminated (SIGTERM to its process
/// group, SIGKILL after `kill_grace`) as soon as `stop` becomes true, and
/// `TaskError::Interrupted` is returned.
pub fn run_dir_until(
    dir: &Path,
    env: &[(String, String)],
    timeout: Duration,
    kill_grace: Duration,
    stop: &AtomicBool,
) -> Result<Vec<TaskOutcome>, TaskError> {
    let mut done = Vec::new();
    for path in list_dir(dir)? {
        if stop.load(Ordering::SeqCst) {
            return Err(TaskError::Interrupted { path });
        }
        perms::check_trusted(&path).map_err(TaskError::Unsafe)?;
        let mode = std::fs::metadata(&path)
            .map_err(|err| TaskError::Io {
                path: path.clone(),
                err,
            })?
            .permissions()
            .mode();
        if mode & 0o111 == 0 {
            return Err(TaskError::Io {
                path,
                err: io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "not executable (chmod +x to run it, or rename it to *.disabled)",
                ),
            });
        }
        log::info!("running task {}", path.display());
        let outcome = run_one(&path, env, timeout, kill_grace, stop)?;
        match outcome.status {
            TaskStatus::Success => {
                log::info!(
                    "task {} succeeded in {:.1} s",
                    path.display(),
                    outcome.duration.as_secs_f64()
                );
                done.push(outcome)
            }
            _ if stop.load(Ordering::SeqCst) => return Err(TaskError::Interrupted { path }),
            _ => return Err(TaskError::Failed(outcome)),
        }
    }
    Ok(done)
}

fn run_one(
    path: &Path,
    env: &[(String, String)],
    timeout: Duration,
    kill_grace: Duration,
    stop: &AtomicBool,
) -> Result<TaskOutcome, TaskError> {
    let start = Instant::now();
    let mut child = Command::new(path)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        // Own process group: a timeout must also reach what the task started.
        .process_group(0)
        .spawn()
        .map_err(|err| TaskError::Io {
            path: path.to_path_buf(),
            err,
        })?;
    let io_err = |err| TaskError::Io {
        path: path.to_path_buf(),
        err,
    };
    loop {
        if let Some(st) = child.try_wait().map_err(io_err)? {
            return Ok(TaskOutcome {
                path: path.to_path_buf(),
                status: status_of(st),
                duration: start.elapsed(),
            });
        }
        let timed_out = start.elapsed() >= timeout;
        if timed_out || stop.load(Ordering::SeqCst) {
            if timed_out {
                log::error!(
                    "task {} exceeded its timeout of {:?}; terminating it",
                    path.display(),
                    timeout
                );
            } else {
                log::warn!("stop requested: terminating task {}", path.display());
            }
            terminate_group(&mut child, kill_grace).map_err(io_err)?;
            return Ok(TaskOutcome {
                path: path.to_path_buf(),
                status: if timed_out {
                    TaskStatus::TimedOut
                } else {
                    TaskStatus::Failed(128 + libc::SIGTERM)
                },
                duration: start.elapsed(),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn status_of(st: ExitStatus) -> TaskStatus {
    match (st.code(), st.signal()) {
        (Some(0), _) => TaskStatus::Success,
        (Some(c), _) => TaskStatus::Failed(c),
        (None, Some(sig)) => TaskStatus::Failed(128 + sig),
        (None, None) => TaskStatus::Failed(-1),
    }
}

/// SIGTERM to the whole group, SIGKILL after `grace`, then reap the leader.
fn terminate_group(child: &mut Child, grace: Duration) -> io::Result<()> {
    let pgid = child.id() as libc::pid_t;
    // SAFETY: plain syscall; pgid is the group we created for this child.
    unsafe { libc::kill(-pgid, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    loop {
        if child.try_wait()?.is_some() && !group_alive(pgid) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: as above.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    child.wait()?;
    Ok(())
}

fn group_alive(pgid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only probes for existence.
    unsafe { libc::kill(-pgid, 0) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use umm_testsupport::FakeRoot;

    fn script(d: &FakeRoot, rel: &str, body: &str, mode: u32) -> PathBuf {
        d.write_mode(rel, &format!("#!/bin/sh\n{body}\n"), mode)
    }

    const T: Duration = Duration::from_secs(10);
    const G: Duration = Duration::from_millis(500);

    #[test]
    fn runs_in_byte_order_and_skips_ignored_names() {
        let d = FakeRoot::new();
        let log = d.path().join("log");
        let tasks = d.mkdir("tasks");
        let l = log.display();
        for name in [
            "b",
            "B",
            "a10",
            "a2",
            ".hidden",
            "x~",
            "c.dpkg-old",
            "d.rpmnew",
            "e.disabled",
        ] {
            script(
                &d,
                &format!("tasks/{name}"),
                &format!("echo {name} >> {l}"),
                0o755,
            );
        }
        let out = run_dir(&tasks, &[], T, G).unwrap();
        assert_eq!(fs::read_to_string(&log).unwrap(), "B\na10\na2\nb\n");
        assert_eq!(out.len(), 4);
        assert!(out.iter().all(|o| o.status == TaskStatus::Success));
    }

    #[test]
    fn env_is_passed_and_missing_dir_is_empty() {
        let d = FakeRoot::new();
        let out = d.path().join("out");
        script(
            &d,
            "t",
            &format!("echo \"$FOO\" > {}", out.display()),
            0o755,
        );
        run_dir(d.path(), &[("FOO".into(), "bar".into())], T, G).unwrap();
        assert_eq!(fs::read_to_string(out).unwrap(), "bar\n");
        assert!(run_dir(&d.path().join("none"), &[], T, G)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn failure_stops_the_run() {
        let d = FakeRoot::new();
        let marker = d.path().join("ran");
        script(&d, "1-fail", "exit 3", 0o755);
        script(&d, "2-later", &format!("touch {}", marker.display()), 0o755);
        match run_dir(d.path(), &[], T, G) {
            Err(TaskError::Failed(o)) => {
                assert_eq!(o.status, TaskStatus::Failed(3));
                assert!(o.path.ends_with("1-fail"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(!marker.exists());
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let d = FakeRoot::new();
        let pidfile = d.path().join("pid");
        // The child sleep ignores nothing; it must die with its parent's group.
        script(
            &d,
            "slow",
            &format!("sleep 300 & echo $! > {}; wait", pidfile.display()),
            0o755,
        );
        let start = Instant::now();
        match run_dir(d.path(), &[], Duration::from_millis(500), G) {
            Err(TaskError::Failed(o)) => assert_eq!(o.status, TaskStatus::TimedOut),
            other => panic!("unexpected {other:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(5));
        let pid: i32 = fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        // A killed orphan may linger as a zombie until init reaps it.
        let alive = fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false);
        assert!(!alive, "sleep child {pid} survived the timeout");
    }

    #[test]
    fn sigterm_ignoring_task_is_killed_after_grace() {
        let d = FakeRoot::new();
        script(
            &d,
            "stubborn",
            "trap '' TERM; while :; do sleep 0.1; done",
            0o755,
        );
        let start = Instant::now();
        let r = run_dir(
            d.path(),
            &[],
            Duration::from_millis(300),
            Duration::from_millis(300),
        );
        assert!(matches!(
            r,
            Err(TaskError::Failed(TaskOutcome {
                status: TaskStatus::TimedOut,
                ..
            }))
        ));
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn unsafe_and_non_executable_files_are_named() {
        let d = FakeRoot::new();
        let p = script(&d, "writable", "true", 0o757);
        let e = run_dir(d.path(), &[], T, G).unwrap_err();
        assert!(matches!(e, TaskError::Unsafe(_)), "{e:?}");
        assert!(e.to_string().contains(&p.display().to_string()), "{e}");

        fs::remove_file(&p).unwrap();
        let p = script(&d, "plain", "true", 0o644);
        let e = run_dir(d.path(), &[], T, G).unwrap_err();
        assert!(e.to_string().contains(&p.display().to_string()), "{e}");
        assert!(e.to_string().contains("not executable"), "{e}");
    }

    #[test]
    fn stop_flag_interrupts_a_running_task() {
        let d = FakeRoot::new();
        script(&d, "long", "sleep 300", 0o755);
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            s2.store(true, Ordering::SeqCst);
        });
        let start = Instant::now();
        let e = run_dir_until(d.path(), &[], T, G, &stop).unwrap_err();
        assert!(matches!(e, TaskError::Interrupted { .. }), "{e:?}");
        assert!(start.elapsed() < Duration::from_secs(3));
    }
}
