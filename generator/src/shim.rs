//! `umm-init`: the PID-1 pre-stage for init systems other than systemd.
//!
//! The kernel starts it as `init=/usr/sbin/umm-init`. It mounts `/proc` and
//! `/run` when they are not mounted yet, takes this boot's decision with the
//! same code as the generator ([`umm_core::inputs::gather`]), hands it on in
//! `/run/umm/decision` and (except to systemd) as `UMM_DECISION=<token>` in
//! the environment, and `exec`s the real init with the remaining arguments,
//! keeping PID 1.
//!
//! The real init is, in this order: `umm.init=<absolute path>` from the
//! kernel command line, `/sbin/init`, `/lib/systemd/systemd`, then the
//! kernel's own last resorts (`/etc/init`, `/bin/init`, `/bin/sh`). A
//! candidate that is this very binary is skipped (no exec loop).
//!
//! It must always end in an exec of a working init: when anything goes wrong
//! while deciding (unreadable or corrupt files, a panic), it logs to
//! `/dev/kmsg` and execs the real init unchanged (no `UMM_DECISION`, no
//! marker), and the boot step that runs later (`umm boot record`) decides
//! from the same inputs. Every path it touches goes through [`Root`], so tests
//! run it on a fake root: there the init candidates are looked up under the
//! root too (and nothing is mounted), which is how the fallback is tested.

use std::ffi::{CString, OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use umm_core::cmdline;
use umm_core::fsutil::{self, Wait};
use umm_core::inputs;
use umm_core::paths::Root;
use umm_core::state;

/// Kernel command-line key naming the real init.
pub const INIT_KEY: &str = "umm.init";
/// Tried after `umm.init=`, in order.
pub const DEFAULT_INITS: &[&str] = &[
    "/sbin/init",
    "/lib/systemd/systemd",
    "/etc/init",
    "/bin/init",
    "/bin/sh",
];
/// The environment variable that carries the decision to a non-systemd init.
pub const ENV_DECISION: &str = "UMM_DECISION";

/// What the pre-stage hands on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handover {
    pub token: String,
}

/// Returns only on failure, with the exit status.
pub fn main(args: &[OsString]) -> u8 {
    let started = std::time::Instant::now();
    let root = Root::from_env();
    if root.is_real() && std::process::id() != 1 {
        // By hand on a running system it would overwrite this boot's marker
        // and exec an init that is not PID 1 (telinit, or a second systemd).
        crate::say!(
            "umm-init is the PID-1 pre-stage: boot with init=/usr/sbin/umm-init (see docs/init-systems.md); it does nothing when run by hand"
        );
        return 2;
    }
    if root.is_real() {
        mount_early();
    }
    umm_core::logger::init_boot("umm-init", root.is_real());
    let rest: &[OsString] = args.get(1..).unwrap_or(&[]);

    let line = guarded(|| {
        let (line, _, err) = cmdline::read(&root, cmdline::in_container(&root));
        if let Some(e) = err {
            log::warn!("{e}");
        }
        line
    })
    .unwrap_or_default();
    let configured = guarded(|| configured_init(&line)).flatten();
    let candidates = candidates(configured.as_deref());
    let me = own_identity();
    let usable: Vec<&str> = candidates
        .iter()
        .map(String::as_str)
        .filter(|c| is_usable(&root, c, me))
        .collect();
    let Some(&target) = usable.first() else {
        log::error!(
            "no working init found (tried {}); giving up",
            candidates.join(", ")
        );
        return 1;
    };

    let handover = match guarded(|| decide_and_mark(&root)) {
        Some(Ok(h)) => h,
        Some(Err(e)) => {
            log::error!("{e}; starting {target} unchanged");
            None
        }
        None => {
            log::error!("internal error (panic) while deciding; starting {target} unchanged");
            None
        }
    };

    // An exec that fails (a broken file, a missing interpreter) moves on to
    // the next candidate; the last error is reported if none works.
    for cand in &usable {
        let env = match &handover {
            Some(h) if !is_systemd(&root, cand) => Some(h.token.as_str()),
            _ => None,
        };
        let err = exec(&root, cand, rest, env, started);
        log::error!("cannot execute {cand}: {err}; trying the next init");
    }
    log::error!("no init could be executed; giving up");
    1
}

/// Runs `f`, turning a panic into `None`, so no panic escapes PID 1.
pub fn guarded<R>(f: impl FnOnce() -> R) -> Option<R> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok()
}

/// The last valid `umm.init=` on the command line (an absolute path).
pub fn configured_init(line: &str) -> Option<String> {
    let mut found = None;
    for word in cmdline::split(line) {
        if let Some(v) = word
            .strip_prefix(INIT_KEY)
            .and_then(|r| r.strip_prefix('='))
        {
            if v.starts_with('/') && !v.contains('\0') {
                found = Some(v.to_string());
            } else {
                log::warn!("ignoring '{INIT_KEY}={v}': it must be an absolute path");
            }
        }
    }
    found
}

/// The init candidates, configured one first, without duplicates.
pub fn candidates(configured: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(DEFAULT_INITS.len() + 1);
    for c in configured.into_iter().chain(DEFAULT_INITS.iter().copied()) {
        if !out.iter().any(|o| o == c) {
            out.push(c.to_string());
        }
    }
    out
}

/// (device, inode) of the running binary, to avoid exec'ing ourselves.
fn own_identity() -> Option<(u64, u64)> {
    let exe = std::env::current_exe().ok()?;
    fs::metadata(exe).ok().map(|m| (m.dev(), m.ino()))
}

/// An existing, executable regular file that is not this binary.
fn is_usable(root: &Root, cand: &str, me: Option<(u64, u64)>) -> bool {
    let path = root.path(cand);
    let Ok(m) = fs::metadata(&path) else {
        log::debug!("{cand}: not found");
        return false;
    };
    if m.is_dir() {
        // /etc/init is upstart's job directory on every upstart system.
        log::debug!("{cand}: a directory, skipped");
        return false;
    }
    if !m.is_file() || m.mode() & 0o111 == 0 {
        log::warn!("{cand}: not an executable file, skipped");
        return false;
    }
    if me == Some((m.dev(), m.ino())) {
        log::warn!("{cand} is umm-init itself, skipped");
        return false;
    }
    true
}

/// Whether `cand` (after following links) is systemd, which gets nothing
/// but the marker: its generator does the rest.
fn is_systemd(root: &Root, cand: &str) -> bool {
    let named = |p: &Path| p.file_name() == Some(OsStr::new("systemd"));
    named(Path::new(cand)) || fs::canonicalize(root.path(cand)).is_ok_and(|p| named(&p))
}

/// Decides and writes `/run/umm/decision`. `Ok(None)`: nothing handed on,
/// because the state directory is not there yet (a separate `/var`), so the
/// decision is left to `umm boot record` after the file systems are mounted.
fn decide_and_mark(root: &Root) -> Result<Option<Handover>, String> {
    let g = inputs::gather(root, None, false);
    for w in &g.warnings {
        log::warn!("{w}");
    }
    if let Some(e) = g.errors.first() {
        // Unusable config or state: do not hand on a decision taken from
        // partial inputs; the later boot step decides and moves files aside.
        return Err(e.clone());
    }
    let state_dir = &g.loaded.config.state_dir;
    if !root.path(state_dir).is_dir() {
        log::info!(
            "{} is not there yet (separate /var?); the decision is left to 'umm boot record'",
            state_dir.display()
        );
        return Ok(None);
    }
    let token = g.decision.token();
    let marker = format!(
        "{}by=umm-init\n",
        state::marker_text(&g.decision, &g.boot_id, fsutil::now_unix())
    );
    let path = root.path(state::EARLY_DECISION);
    runtime_dir(root)?;
    fsutil::write_atomic(&path, marker.as_bytes(), 0o644)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    if g.decision.is_maintenance() {
        log::info!("maintenance mode ({token}): {}", g.why);
    } else {
        log::info!("{token}: {}", g.why);
    }
    Ok(Some(Handover { token }))
}

/// Replaces this process with `cand` (argv[0] = `cand`, then our remaining
/// arguments, our environment plus `UMM_DECISION` when given). Returns only
/// on failure.
///
/// A plain `execve`, doing what std's `Command::exec` did: the environment
/// sorted by name without duplicates (later wins), SIGPIPE back to its
/// default and an empty signal mask, so the init starts as the kernel would
/// have started it.
///
/// The line it logs says how long umm-init ran until then (from its `main`:
/// the boot's own figure for the pre-stage, docs/benchmarks.md).
fn exec(
    root: &Root,
    cand: &str,
    rest: &[OsString],
    decision: Option<&str>,
    started: std::time::Instant,
) -> std::io::Error {
    let took = started.elapsed().as_secs_f64() * 1000.0;
    match decision {
        Some(t) => log::info!("starting {cand} with {ENV_DECISION}={t} ({took:.2} ms in umm-init)"),
        None => log::info!("starting {cand} ({took:.2} ms in umm-init)"),
    }
    let nul = || std::io::Error::new(std::io::ErrorKind::InvalidInput, "nul byte in argument");
    let cstr = |b: &[u8]| CString::new(b).map_err(|_| nul());
    let build = || -> std::io::Result<(CString, Vec<CString>, Vec<CString>)> {
        let path = cstr(root.path(cand).as_os_str().as_bytes())?;
        let mut argv = vec![cstr(cand.as_bytes())?];
        for a in rest {
            argv.push(cstr(a.as_bytes())?);
        }
        Ok((path, argv, environment(decision).map_err(|_| nul())?))
    };
    let (path, argv, envp) = match build() {
        Ok(v) => v,
        Err(e) => return e,
    };
    let ptrs = |v: &[CString]| {
        v.iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect::<Vec<_>>()
    };
    let (argv_p, envp_p) = (ptrs(&argv), ptrs(&envp));
    // SAFETY: NUL-terminated strings and NULL-terminated arrays that outlive
    // the call; the signal calls only change this process's dispositions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        libc::execve(path.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr());
    }
    std::io::Error::last_os_error()
}

/// The environment for the real init: ours without `UMM_DECISION`, plus
/// `UMM_DECISION=<token>` when given; sorted by name, one entry per name.
pub fn environment(decision: Option<&str>) -> Result<Vec<CString>, std::ffi::NulError> {
    let mut vars: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| k != ENV_DECISION)
        .collect();
    if let Some(t) = decision {
        vars.push((ENV_DECISION.into(), t.into()));
    }
    // Stable: of equal names the last one (what the environment yields
    // last) is kept below.
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<CString> = Vec::with_capacity(vars.len());
    let mut last: Option<&OsStr> = None;
    for (k, v) in &vars {
        let mut kv = k.as_bytes().to_vec();
        kv.push(b'=');
        kv.extend_from_slice(v.as_bytes());
        let c = CString::new(kv)?;
        if last == Some(k.as_os_str()) {
            out.pop();
        }
        out.push(c);
        last = Some(k);
    }
    Ok(out)
}

/// `/run/umm`, created (0755) when missing, and otherwise accepted only as
/// the boot path would read it: a real directory (a link there is never
/// written through), root-owned, not writable by others, nor above it.
fn runtime_dir(root: &Root) -> Result<(), String> {
    let dir = Path::new(umm_core::paths::RUNTIME_DIR);
    let real = root.path(dir);
    let fail = |e: &dyn std::fmt::Display| {
        format!(
            "cannot write {}: {e}",
            root.path(state::EARLY_DECISION).display()
        )
    };
    if let Err(e) = fs::symlink_metadata(&real) {
        if e.kind() != std::io::ErrorKind::NotFound {
            return Err(fail(&e));
        }
        use std::os::unix::fs::DirBuilderExt;
        // /run too on a fake root; on a real boot it is a mounted tmpfs.
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&real)
            .map_err(|e| fail(&e))?;
    }
    match fsutil::check_dir(root, dir, &fsutil::Policy::STATE) {
        Ok(true) => Ok(()),
        Ok(false) => Err(fail(&"/run/umm vanished")),
        Err(e) => Err(fail(&e)),
    }
}

// ---- the initramfs (dracut pre-pivot hook) ----

/// `umm-init --initrd-decide <sysroot>`: decides against the real root
/// mounted at `sysroot` (its config and state; the command line is the
/// kernel's, `rd.umm=` counts), writes `/run/umm/decision` in the
/// initramfs' `/run` (which the switch to the real root carries over), and,
/// when the real root is mounted writable, records this boot in its state
/// already, so a boot that dies before `umm boot record` runs on the real root
/// is counted as unclean too. Never fails the boot: exit status 0 always.
pub fn initrd_decide(sysroot: &Path) -> u8 {
    umm_core::logger::init_boot("umm-initrd", Root::from_env().is_real());
    match guarded(|| initrd_run(sysroot)) {
        Some(Ok(msg)) => log::info!("{msg}"),
        Some(Err(e)) => log::error!("{e}; the real root decides"),
        None => log::error!("internal error (panic); the real root decides"),
    }
    0
}

fn initrd_run(sysroot: &Path) -> Result<String, String> {
    // The initramfs' own /proc and /run; everything else from the real root.
    let here = Root::from_env();
    let (line, _, err) = cmdline::read(&here, false);
    if let Some(e) = err {
        log::warn!("{e}");
    }
    let real = Root::new(sysroot);
    let g = inputs::gather(&real, Some(&line), true);
    for w in &g.warnings {
        log::warn!("{w}");
    }
    if let Some(e) = g.errors.first() {
        return Err(e.clone());
    }
    let boot_id = state::boot_id(&here);
    let now = fsutil::now_unix();
    let marker = format!(
        "{}by=initramfs\n",
        state::marker_text(&g.decision, &boot_id, now)
    );
    let path = here.path(state::EARLY_DECISION);
    runtime_dir(&here)?;
    fsutil::write_atomic(&path, marker.as_bytes(), 0o644)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let token = g.decision.token();
    // Count this boot now if the real root is writable (mounted rw). The
    // lock is the initramfs' own (its /run is the one the real root gets).
    let dir = &g.loaded.config.state_dir;
    let counted = if real.path(dir).is_dir() {
        let counted = state::lock(&here, Wait::UpTo(state::UPDATE_LOCK_WAIT)).and_then(|lock| {
            state::update_locked(&lock, &real, dir, |st| {
                st.record_boot(&g.decision, &boot_id, now);
                st.unclean_boots
            })
        });
        match counted {
            Ok(u) => format!("boot counted ({} unclean before it)", u.value),
            Err(e) => format!("not counted yet ({e}): umm boot record counts it later"),
        }
    } else {
        format!(
            "{} not found: umm boot record counts it later",
            dir.display()
        )
    };
    Ok(format!("{token}: {}; {counted}", g.why))
}

// ---- early mounts (only on the real root, i.e. as PID 1) ----

fn mount_early() {
    if !is_proc_mounted(Path::new("/proc")) {
        mount("proc", "/proc", "proc", None);
    }
    if !is_mount_point(Path::new("/run")) {
        if !Path::new("/run").is_dir() {
            let _ = fs::create_dir("/run");
        }
        mount("tmpfs", "/run", "tmpfs", Some("mode=0755"));
    }
}

/// `/proc` is mounted when statfs says it is procfs.
// f_type and the magic constants have different integer types on other targets.
#[allow(clippy::unnecessary_cast)]
pub fn is_proc_mounted(p: &Path) -> bool {
    let Ok(c) = CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: c is a valid NUL-terminated path, st is written by the call.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == libc::PROC_SUPER_MAGIC as i64
    }
}

/// A directory is a mount point when it is on another device than its
/// parent (what mountpoint(1) checks first).
pub fn is_mount_point(p: &Path) -> bool {
    let parent: PathBuf = p
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    match (fs::metadata(p), fs::metadata(parent)) {
        (Ok(a), Ok(b)) => a.dev() != b.dev(),
        _ => false,
    }
}

fn mount(src: &str, target: &str, fstype: &str, data: Option<&str>) {
    let (Ok(s), Ok(t), Ok(f)) = (
        CString::new(src),
        CString::new(target),
        CString::new(fstype),
    ) else {
        return;
    };
    let d = data.and_then(|d| CString::new(d).ok());
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    // SAFETY: all pointers are valid NUL-terminated strings or null.
    let rc = unsafe {
        libc::mount(
            s.as_ptr(),
            t.as_ptr(),
            f.as_ptr(),
            flags,
            d.as_ref()
                .map_or(std::ptr::null(), |d| d.as_ptr().cast::<libc::c_void>()),
        )
    };
    if rc != 0 {
        // The logger is not up yet: stderr is the console.
        crate::say!(
            "umm-init: cannot mount {fstype} on {target}: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_init_last_absolute_wins() {
        assert_eq!(configured_init("root=/dev/vda quiet"), None);
        assert_eq!(
            configured_init("umm.init=/sbin/a x umm.init=/sbin/b"),
            Some("/sbin/b".into())
        );
        assert_eq!(
            configured_init("umm.init=/sbin/a umm.init=relative umm.init="),
            Some("/sbin/a".into())
        );
        assert_eq!(configured_init("umm.initx=/sbin/a"), None);
    }

    #[test]
    fn candidate_order_without_duplicates() {
        assert_eq!(candidates(None), DEFAULT_INITS);
        let c = candidates(Some("/sbin/init"));
        assert_eq!(c, DEFAULT_INITS);
        let c = candidates(Some("/usr/lib/sysvinit/init"));
        assert_eq!(c[0], "/usr/lib/sysvinit/init");
        assert_eq!(&c[1..], DEFAULT_INITS);
    }

    #[test]
    fn panics_are_caught() {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let r: Option<u8> = guarded(|| panic!("boom"));
        std::panic::set_hook(prev);
        assert_eq!(r, None);
        assert_eq!(guarded(|| 7), Some(7));
    }

    #[test]
    fn mount_checks() {
        assert!(is_proc_mounted(Path::new("/proc")));
        let d = tempfile::tempdir().unwrap();
        assert!(!is_proc_mounted(d.path()));
        assert!(!is_proc_mounted(Path::new("/nonexistent")));
        assert!(is_mount_point(Path::new("/proc")));
        assert!(!is_mount_point(d.path()));
        assert!(!is_mount_point(Path::new("/nonexistent/x")));
    }
}
