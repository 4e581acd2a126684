//! Running a directory of operator-supplied executables (umm's hooks,
//! rebootmgr's pre/post-boot tasks) with one set of rules: lexical order,
//! every task checked before the first one runs, a timeout that also kills
//! the task's children, and the first failure stops the run.
//!
//! Checked is what runs: each task is opened once ([`fsutil::open_exec`]:
//! walked from the root, links resolved inside it, the file and every
//! directory above it and above a link's target root-owned and not writable
//! by group or others), and the child executes that descriptor
//! (`fexecve`), never the path again. A script's `#!` interpreter reads it
//! as `/dev/fd/N`. docs/security.md, "Hooks and tasks".

use crate::fsutil::{self, Executable, Found, ReadError};
use crate::paths::Root;
use crate::perms;
use std::ffi::{CString, OsString};
use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
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

impl TaskError {
    fn from_read(shown: &Path, e: ReadError) -> TaskError {
        match e {
            ReadError::Unsafe(mut u) => {
                u.path = shown.to_path_buf();
                TaskError::Unsafe(u)
            }
            other => TaskError::Io {
                path: shown.to_path_buf(),
                err: io::Error::other(other.problem()),
            },
        }
    }
}

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

/// A task that passed every check, held open until it runs.
struct Checked {
    /// As shown in messages: the path under the root.
    shown: PathBuf,
    exe: Executable,
}

/// The tasks `run_dir` would run, in order, each opened and checked: the
/// directory `dir` (a path of the running system, under `root`) and every
/// file in it. Directories inside `dir` are not descended into. A missing
/// `dir` means no tasks.
fn check_dir(root: &Root, dir: &Path) -> Result<Vec<Checked>, TaskError> {
    let shown_dir = root.path(dir);
    let names = match fsutil::list_dir(root, dir, &fsutil::Policy::EXEC) {
        Ok(Some(n)) => n,
        Ok(None) => return Ok(Vec::new()),
        Err(e) => return Err(TaskError::from_read(&shown_dir, e)),
    };
    let mut out = Vec::new();
    for name in names.into_iter().filter(|n| !is_ignored(n.as_bytes())) {
        let abs = dir.join(&name);
        let shown = shown_dir.join(&name);
        let exe = match fsutil::open_exec(root, &abs) {
            Ok(Some(Found::File(exe))) => exe,
            Ok(Some(Found::Dir)) => continue,
            Ok(None) => {
                return Err(TaskError::Io {
                    path: shown,
                    err: io::Error::new(
                        io::ErrorKind::NotFound,
                        "vanished while the tasks were checked, or a link to nothing",
                    ),
                })
            }
            Err(e) => return Err(TaskError::from_read(&shown, e)),
        };
        if exe.stat.st_mode & 0o111 == 0 {
            return Err(TaskError::Io {
                path: shown,
                err: io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "not executable (chmod +x to run it, or rename it to *.disabled)",
                ),
            });
        }
        out.push(Checked { shown, exe });
    }
    Ok(out)
}

/// The tasks `run_dir` would run, in order (also for `--dry-run` listings),
/// as paths under the root. Fails like `run_dir` on a task it would refuse.
pub fn list_dir(root: &Root, dir: &Path) -> Result<Vec<PathBuf>, TaskError> {
    Ok(check_dir(root, dir)?.into_iter().map(|c| c.shown).collect())
}

/// Runs every executable regular file in `dir` (a path of the running
/// system under `root`); see the module doc.
pub fn run_dir(
    root: &Root,
    dir: &Path,
    env: &[(String, String)],
    timeout: Duration,
    kill_grace: Duration,
) -> Result<Vec<TaskOutcome>, TaskError> {
    run_dir_until(root, dir, env, timeout, kill_grace, &AtomicBool::new(false))
}

/// Like [`run_dir`], but a running task is terminated (SIGTERM to its process
/// group, SIGKILL after `kill_grace`) as soon as `stop` becomes true, and
/// `TaskError::Interrupted` is returned.
pub fn run_dir_until(
    root: &Root,
    dir: &Path,
    env: &[(String, String)],
    timeout: Duration,
    kill_grace: Duration,
    stop: &AtomicBool,
) -> Result<Vec<TaskOutcome>, TaskError> {
    // Every task is checked before the first one runs: a bad one found
    // half-way would leave the transition half done.
    let checked = check_dir(root, dir)?;
    let mut done = Vec::new();
    for task in checked {
        let path = task.shown.clone();
        if stop.load(Ordering::SeqCst) {
            return Err(TaskError::Interrupted { path });
        }
        log::info!("running task {}", path.display());
        let outcome = run_one(&task, env, timeout, kill_grace, stop)?;
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

/// argv and envp for `fexecve`, built before `fork` (the child must not
/// allocate). The pointers point into the `CString`s kept alongside.
struct ExecArgs {
    _strings: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

// SAFETY: the pointers only point into `_strings`, which moves with them and
// is never changed; the child process reads them after fork.
unsafe impl Send for ExecArgs {}
// SAFETY: as above: shared use only reads.
unsafe impl Sync for ExecArgs {}

impl ExecArgs {
    fn new(argv0: &Path, env: &[(String, String)]) -> io::Result<ExecArgs> {
        let nul = |_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in an argument");
        let mut vars: std::collections::BTreeMap<OsString, OsString> =
            std::env::vars_os().collect();
        for (k, v) in env {
            vars.insert(k.into(), v.into());
        }
        let arg0 = CString::new(argv0.as_os_str().as_bytes()).map_err(nul)?;
        let mut envs = Vec::with_capacity(vars.len());
        for (k, v) in vars {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend(v.into_vec());
            envs.push(CString::new(kv).map_err(nul)?);
        }
        let mut strings = vec![arg0];
        strings.extend(envs);
        let argv = vec![strings[0].as_ptr(), std::ptr::null()];
        let mut envp: Vec<*const libc::c_char> = strings[1..].iter().map(|c| c.as_ptr()).collect();
        envp.push(std::ptr::null());
        Ok(ExecArgs {
            _strings: strings,
            argv,
            envp,
        })
    }
}

/// The environment variable that tells a task its own path (its `$0` is
/// `/dev/fd/N`, the descriptor that was checked).
pub const ENV_TASK_PATH: &str = "UMM_TASK_PATH";

/// Starts `task` in its own process group by executing its descriptor.
fn spawn_checked(task: &Checked, env: &[(String, String)]) -> io::Result<Child> {
    let mut env = env.to_vec();
    env.push((
        ENV_TASK_PATH.to_string(),
        task.shown.to_string_lossy().into_owned(),
    ));
    let args = ExecArgs::new(&task.shown, &env)?;
    let fd = task.exe.fd.as_raw_fd();
    let mut cmd = Command::new(&task.shown);
    cmd.stdin(Stdio::null())
        // Own process group: a timeout must also reach what the task started.
        .process_group(0);
    // SAFETY: runs in the forked child before exec; fcntl and fexecve are
    // async-signal-safe and use only memory prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            // The whole struct, not its fields (which alone are not Send).
            let args = &args;
            // Not close-on-exec in the child: a #! interpreter is handed
            // /dev/fd/N and must be able to open it.
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                return Err(io::Error::last_os_error());
            }
            libc::fexecve(fd, args.argv.as_ptr(), args.envp.as_ptr());
            Err(io::Error::last_os_error())
        });
    }
    cmd.spawn()
}

fn run_one(
    task: &Checked,
    env: &[(String, String)],
    timeout: Duration,
    kill_grace: Duration,
    stop: &AtomicBool,
) -> Result<TaskOutcome, TaskError> {
    let path = &task.shown;
    let start = Instant::now();
    let io_err = |err| TaskError::Io {
        path: path.to_path_buf(),
        err,
    };
    let mut child = spawn_checked(task, env).map_err(io_err)?;
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

/// What [`run_program`] saw: `None` status when it timed out (and was killed).
#[derive(Debug)]
pub struct ProgramOutput {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a program of the system (absolute path, no shell) with its output
/// captured, in its own process group, ended like a task (SIGTERM to the
/// group, SIGKILL after [`DEFAULT_KILL_GRACE`]) when `timeout` passes. For
/// the tools of an integration (`[pacemaker]`'s crm_* commands).
pub fn run_program(path: &Path, args: &[&str], timeout: Duration) -> io::Result<ProgramOutput> {
    use std::io::Read;
    let mut child = Command::new(path)
        .args(args)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.by_ref().take(16 << 20).read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("piped")));
    let err = reader(Box::new(child.stderr.take().expect("piped")));
    let deadline = crate::duration::deadline(Instant::now(), timeout);
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break Some(st);
        }
        if Instant::now() >= deadline {
            terminate_group(&mut child, DEFAULT_KILL_GRACE)?;
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(ProgramOutput {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// SIGTERM to the whole group, SIGKILL after `grace`, then reap the leader.
fn terminate_group(child: &mut Child, grace: Duration) -> io::Result<()> {
    let pgid = child.id() as libc::pid_t;
    // SAFETY: plain syscall; pgid is the group we created for this child.
    unsafe { libc::kill(-pgid, libc::SIGTERM) };
    let deadline = crate::duration::deadline(Instant::now(), grace);
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
    use std::os::unix::fs::{symlink, PermissionsExt};
    use umm_testsupport::FakeRoot;

    fn script(dir: &Path, name: &str, body: &str, mode: u32) -> PathBuf {
        umm_testsupport::fakeroot::mkdirs(dir);
        let p = dir.join(name);
        fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    /// A fake root with the task directory /tasks in it.
    struct Fake {
        d: FakeRoot,
    }

    impl Fake {
        fn new() -> Fake {
            umm_testsupport::require_root();
            let d = FakeRoot::new();
            d.mkdir("/tasks");
            Fake { d }
        }
        fn root(&self) -> Root {
            Root::new(self.d.path())
        }
        fn p(&self, abs: &str) -> PathBuf {
            self.d.p(abs)
        }
        fn tasks(&self) -> PathBuf {
            self.p("/tasks")
        }
        fn run(&self) -> Result<Vec<TaskOutcome>, TaskError> {
            run_dir(&self.root(), Path::new("/tasks"), &[], T, G)
        }
    }

    const T: Duration = Duration::from_secs(10);
    const G: Duration = Duration::from_millis(500);

    #[test]
    fn runs_in_byte_order_and_skips_ignored_names() {
        let f = Fake::new();
        let log = f.p("/log");
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
            script(&f.tasks(), name, &format!("echo {name} >> {l}"), 0o755);
        }
        fs::create_dir(f.p("/tasks/subdir")).unwrap();
        let out = f.run().unwrap();
        assert_eq!(fs::read_to_string(&log).unwrap(), "B\na10\na2\nb\n");
        assert_eq!(out.len(), 4);
        assert!(out.iter().all(|o| o.status == TaskStatus::Success));
        assert_eq!(
            list_dir(&f.root(), Path::new("/tasks")).unwrap(),
            ["B", "a10", "a2", "b"].map(|n| f.p("/tasks").join(n))
        );
    }

    #[test]
    fn env_is_passed_and_missing_dir_is_empty() {
        let f = Fake::new();
        let out = f.p("/out");
        script(
            &f.tasks(),
            "t",
            &format!("echo \"$FOO $UMM_TASK_PATH\" > {}", out.display()),
            0o755,
        );
        run_dir(
            &f.root(),
            Path::new("/tasks"),
            &[("FOO".into(), "bar".into())],
            T,
            G,
        )
        .unwrap();
        assert_eq!(
            fs::read_to_string(out).unwrap(),
            format!("bar {}\n", f.p("/tasks/t").display())
        );
        assert!(run_dir(&f.root(), Path::new("/none"), &[], T, G)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn failure_stops_the_run() {
        let f = Fake::new();
        let marker = f.p("/ran");
        script(&f.tasks(), "1-fail", "exit 3", 0o755);
        script(
            &f.tasks(),
            "2-later",
            &format!("touch {}", marker.display()),
            0o755,
        );
        match f.run() {
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
        let f = Fake::new();
        let pidfile = f.p("/pid");
        // The child sleep ignores nothing; it must die with its parent's group.
        script(
            &f.tasks(),
            "slow",
            &format!("sleep 300 & echo $! > {}; wait", pidfile.display()),
            0o755,
        );
        let start = Instant::now();
        match run_dir(
            &f.root(),
            Path::new("/tasks"),
            &[],
            Duration::from_millis(500),
            G,
        ) {
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
        let f = Fake::new();
        script(
            &f.tasks(),
            "stubborn",
            "trap '' TERM; while :; do sleep 0.1; done",
            0o755,
        );
        let start = Instant::now();
        let r = run_dir(
            &f.root(),
            Path::new("/tasks"),
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
        let f = Fake::new();
        let p = script(&f.tasks(), "writable", "true", 0o757);
        let e = f.run().unwrap_err();
        assert!(matches!(e, TaskError::Unsafe(_)), "{e:?}");
        assert!(e.to_string().contains(&p.display().to_string()), "{e}");

        fs::remove_file(&p).unwrap();
        let p = script(&f.tasks(), "plain", "true", 0o644);
        let e = f.run().unwrap_err();
        assert!(e.to_string().contains(&p.display().to_string()), "{e}");
        assert!(e.to_string().contains("not executable"), "{e}");

        fs::remove_file(&p).unwrap();
        // SAFETY: a valid NUL-terminated path.
        let fifo = f.p("/tasks/fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o755) }, 0);
        let e = f.run().unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
    }

    #[test]
    fn stop_flag_interrupts_a_running_task() {
        let f = Fake::new();
        script(&f.tasks(), "long", "sleep 300", 0o755);
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            s2.store(true, Ordering::SeqCst);
        });
        let start = Instant::now();
        let e = run_dir_until(&f.root(), Path::new("/tasks"), &[], T, G, &stop).unwrap_err();
        assert!(matches!(e, TaskError::Interrupted { .. }), "{e:?}");
        assert!(start.elapsed() < Duration::from_secs(3));
    }

    // ---- issue 10, finding 3 ----

    #[test]
    fn link_into_a_user_owned_directory_is_refused() {
        let f = Fake::new();
        // A root-owned, 0755 script, but in a directory a user owns: the
        // user can replace it at any time.
        let user_dir = f.p("/home/user");
        let target = script(&user_dir, "hook", "true", 0o755);
        std::os::unix::fs::chown(&user_dir, Some(65534), None).unwrap();
        for (name, link) in [
            ("abs", PathBuf::from("/home/user/hook")),
            ("rel", PathBuf::from("../home/user/hook")),
        ] {
            let at = f.p("/tasks").join(name);
            symlink(&link, &at).unwrap();
            let e = f.run().unwrap_err();
            let s = e.to_string();
            assert!(matches!(e, TaskError::Unsafe(_)), "{s}");
            assert!(
                s.contains(&format!(
                    "{} above it is owned by uid 65534",
                    user_dir.display()
                )),
                "{s}"
            );
            fs::remove_file(at).unwrap();
        }
        // The same link into a root-owned directory is fine: the target's
        // chain is what is checked.
        std::os::unix::fs::chown(&user_dir, Some(0), None).unwrap();
        symlink("/home/user/hook", f.p("/tasks/ok")).unwrap();
        assert_eq!(f.run().unwrap().len(), 1);
        let _ = target;
    }

    #[test]
    fn group_writable_ancestor_is_refused() {
        let f = Fake::new();
        let deep = f.p("/etc/umm/hooks/pre-on.d");
        let marker = f.p("/ran");
        script(&deep, "x", &format!("touch {}", marker.display()), 0o755);
        fs::set_permissions(f.p("/etc/umm/hooks"), fs::Permissions::from_mode(0o775)).unwrap();
        let e = run_dir(&f.root(), Path::new("/etc/umm/hooks/pre-on.d"), &[], T, G).unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("hooks above it is writable by group or others (mode 0775)"),
            "{s}"
        );
        assert!(!marker.exists());
        // The root itself is part of the chain.
        fs::set_permissions(f.p("/etc/umm/hooks"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(f.d.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let e = run_dir(&f.root(), Path::new("/etc/umm/hooks/pre-on.d"), &[], T, G).unwrap_err();
        assert!(e.to_string().contains("mode 0777"), "{e}");
        assert!(!marker.exists());
    }

    #[test]
    fn every_task_is_checked_before_the_first_one_runs() {
        let f = Fake::new();
        let marker = f.p("/ran");
        script(
            &f.tasks(),
            "1-fine",
            &format!("touch {}", marker.display()),
            0o755,
        );
        script(&f.tasks(), "2-writable", "true", 0o777);
        let e = f.run().unwrap_err();
        assert!(matches!(e, TaskError::Unsafe(_)), "{e}");
        assert!(
            !marker.exists(),
            "1-fine ran although 2-writable is refused"
        );
    }

    /// The swap between check and exec cannot happen by construction: the
    /// task is opened once (O_PATH), the checks are fstat() calls on that
    /// descriptor and on the directory descriptors held on the way, and the
    /// child executes the descriptor (fexecve), never the path. Replacing
    /// the file (or a directory above it) after the check therefore changes
    /// nothing about what runs: this test does exactly that, as root (the
    /// only one who still could), and the checked content runs.
    #[test]
    fn what_runs_is_what_was_checked() {
        let f = Fake::new();
        let out = f.p("/out");
        script(
            &f.tasks(),
            "t",
            &format!("echo checked > {}", out.display()),
            0o755,
        );
        let checked = check_dir(&f.root(), Path::new("/tasks")).unwrap();
        // Swap file and directory after the check.
        let evil = script(
            &f.p("/evil"),
            "t",
            &format!("echo swapped > {}", out.display()),
            0o755,
        );
        fs::rename(f.tasks(), f.p("/old-tasks")).unwrap();
        fs::rename(evil.parent().unwrap(), f.tasks()).unwrap();
        for task in &checked {
            let o = run_one(task, &[], T, G, &AtomicBool::new(false)).unwrap();
            assert_eq!(o.status, TaskStatus::Success);
        }
        assert_eq!(fs::read_to_string(&out).unwrap(), "checked\n");
    }

    #[test]
    fn a_binary_and_a_script_run_from_their_descriptor() {
        let f = Fake::new();
        let out = f.p("/out");
        // A binary (copied, root-owned) and a #!/bin/sh script.
        fs::copy("/bin/true", f.p("/tasks/1-binary")).unwrap();
        fs::set_permissions(f.p("/tasks/1-binary"), fs::Permissions::from_mode(0o755)).unwrap();
        script(
            &f.tasks(),
            "2-script",
            &format!("echo \"$0\" > {}", out.display()),
            0o755,
        );
        assert_eq!(f.run().unwrap().len(), 2);
        let zero = fs::read_to_string(&out).unwrap();
        assert!(zero.starts_with("/dev/fd/"), "the script saw $0 = {zero:?}");
    }
}
