//! Small file-system helpers shared by umm and rebootmgr: crash-safe writes,
//! moving a bad file aside, the exclusive lock every single-writer guard
//! uses, and (in `open`) the one way every file that is read or run is
//! opened: [`read_bounded`], [`read_text`], [`open_file`], [`list_dir`],
//! [`check_dir`], [`open_exec`] with a [`Policy`].

mod open;

pub use open::{
    check_dir, list_dir, open_exec, open_file, read_bounded, read_text, Executable, Found, Opened,
    Policy, ReadError,
};

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::perms;

/// Suffix of the temporary file an atomic write creates next to its target.
/// Readers ignore such files; a leftover one is what an interrupted write leaves.
pub const TMP_SUFFIX: &str = ".tmp~";

/// Writes `data` to `path` so that a crash at any moment leaves either the old
/// or the new content: temp file in the same directory, fsync, rename, fsync
/// the directory. Creates the parent directory when missing (see
/// [`create_dirs`]), and refuses a directory the readers would refuse
/// (`perms::check_trusted_dir`): a file umm writes is one umm trusts.
///
/// The temp file has an unpredictable name and is created with
/// `O_CREAT|O_EXCL|O_NOFOLLOW`: nothing planted in the directory (a link to
/// another file, a file of someone else's) is ever opened, written or chmod'ed.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_dirs(dir)?;
    perms::check_trusted_dir(dir).map_err(|e| {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{e}; umm would not trust a file written there"),
        )
    })?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let (tmp, mut f) = create_temp(dir, name, mode, random_suffix)?;
    let result = (|| {
        f.write_all(data)?;
        // The mode given to open() is masked by the umask; set it exactly.
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    drop(f);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates `dir` and its missing parents, each mode 0755 whatever the umask
/// (a group-writable directory would make umm refuse what it holds), and
/// fsyncs the parent of each one it creates, so that the new entry survives
/// a power cut together with what is written into it.
pub fn create_dirs(dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut p = dir;
    while !p.as_os_str().is_empty() && fs::symlink_metadata(p).is_err() {
        missing.push(p);
        match p.parent() {
            Some(parent) => p = parent,
            None => break,
        }
    }
    for d in missing.into_iter().rev() {
        match fs::DirBuilder::new().mode(0o755).create(d) {
            Ok(()) => {
                fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
                let parent = d.parent().filter(|p| !p.as_os_str().is_empty());
                File::open(parent.unwrap_or(Path::new(".")))?.sync_all()?;
            }
            // Created meanwhile by someone else: the trust check judges it.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// How many names [`create_temp`] tries before it gives up.
const TEMP_ATTEMPTS: usize = 64;

/// Creates `<dir>/<name>.<suffix>.tmp~` exclusively (never following or
/// reusing what is there), trying new suffixes while a name is taken.
fn create_temp(
    dir: &Path,
    name: &std::ffi::OsStr,
    mode: u32,
    mut suffix: impl FnMut() -> String,
) -> io::Result<(PathBuf, File)> {
    let mut last = None;
    for _ in 0..TEMP_ATTEMPTS {
        let mut tmp_name = name.to_os_string();
        tmp_name.push(format!(".{}{TMP_SUFFIX}", suffix()));
        let tmp = dir.join(tmp_name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "no free temporary name next to {} after {TEMP_ATTEMPTS} tries ({})",
            dir.join(name).display(),
            last.map(|e| e.to_string()).unwrap_or_default()
        ),
    ))
}

/// 64 random bits in hex (the kernel's CSPRNG; the clock and the pid if it
/// cannot be read, which O_EXCL still makes safe, only guessable).
fn random_suffix() -> String {
    let mut buf = [0u8; 8];
    // The raw system call, not libc's getrandom(): the static musl build of
    // the generator (PID 1 as umm-init) resolved that symbol to a null
    // pointer and crashed the boot (seen in the sysvinit VM test).
    // SAFETY: getrandom writes at most buf.len() bytes into buf.
    let n = unsafe {
        libc::syscall(
            libc::SYS_getrandom,
            buf.as_mut_ptr(),
            buf.len(),
            libc::GRND_NONBLOCK,
        )
    };
    let bits = if n == buf.len() as libc::c_long {
        u64::from_ne_bytes(buf)
    } else {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        t ^ (u64::from(std::process::id()) << 32)
    };
    format!("{bits:016x}")
}

/// Renames a file that could not be used to `<name>.corrupt-<unix time>` so
/// that it is kept for inspection and no longer read. Returns the new path.
pub fn move_aside(path: &Path, now_unix: u64) -> io::Result<PathBuf> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".corrupt-{now_unix}"));
    let dest = path.with_file_name(name);
    fs::rename(path, &dest)?;
    if let Some(dir) = path.parent() {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(dest)
}

/// How long [`lock_exclusive`] waits for a lock another process holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Give up at once.
    No,
    /// Retry until this much time has passed.
    UpTo(Duration),
}

/// An exclusive `flock` on a file, held until this value is dropped (or the
/// process ends: a crashed holder never leaves a stale lock behind).
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

#[derive(Debug)]
pub enum LockError {
    /// Another process holds the lock (after waiting as long as asked).
    Busy,
    /// The lock file could not be created or opened.
    Io(io::Error),
    /// The lock file, or its directory, is not one we can trust to be ours
    /// alone; the message says why and what to do.
    Unsafe(String),
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Busy => f.write_str("held by another process"),
            LockError::Io(e) => e.fmt(f),
            LockError::Unsafe(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for LockError {}

/// How often a waiting [`lock_exclusive`] tries again.
const LOCK_RETRY: Duration = Duration::from_millis(10);

/// Takes an exclusive `flock` on `path`, waiting as `wait` says.
///
/// Nobody else may be able to hold it: a process that can merely open the
/// file (`flock` works on a read-only descriptor) could block us for as long
/// as it likes. So the directory must pass `perms::check_trusted_dir`
/// (created 0755 when missing), the file is opened with `O_NOFOLLOW` (created
/// 0600), and the open descriptor must be a regular file of ours, mode 0600
/// or stricter, with one link; anything else is [`LockError::Unsafe`].
pub fn lock_exclusive(path: &Path, wait: Wait) -> Result<Lock, LockError> {
    use std::os::unix::fs::MetadataExt;
    let refuse = |why: String| {
        LockError::Unsafe(format!(
            "refusing the lock {}: {why}; umm creates it 0600 in a directory only root can write, so this one is not umm's: remove it (rm {}) and retry",
            path.display(),
            path.display()
        ))
    };
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dirs(dir).map_err(LockError::Io)?;
        perms::check_trusted_dir(dir)
            .map_err(|e| LockError::Unsafe(format!("refusing the lock {}: {e}", path.display())))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => refuse("it is a symbolic link".into()),
            _ => LockError::Io(e),
        })?;
    let md = file.metadata().map_err(LockError::Io)?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if !md.file_type().is_file() {
        return Err(refuse("it is not a regular file".into()));
    }
    if md.uid() != me {
        return Err(refuse(format!("it is owned by uid {}, not {me}", md.uid())));
    }
    if md.mode() & 0o077 != 0 {
        return Err(refuse(format!(
            "its mode is {:04o}: others can open it, and so hold it",
            md.mode() & 0o7777
        )));
    }
    if md.nlink() != 1 {
        return Err(refuse(format!("it has {} hard links", md.nlink())));
    }
    let deadline = match wait {
        Wait::No => Instant::now(),
        Wait::UpTo(d) => Instant::now() + d,
    };
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(Lock { _file: file });
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => {}
            _ => return Err(LockError::Io(e)),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(LockError::Busy);
        }
        std::thread::sleep(left.min(LOCK_RETRY));
    }
}

/// `2026-11-21 09:30:00 UTC` (no time-zone database needed).
pub fn format_time(unix: u64) -> String {
    let [y, m, d, hh, mm, ss] = crate::duration::utc_parts(unix);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02} UTC")
}

/// Seconds since the epoch (0 if the clock is before 1970).
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_times() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_time(1_795_253_400), "2026-11-21 09:30:00 UTC");
    }

    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_write_replaces_and_sets_mode() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/state");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o644).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "two");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
        let leftovers: Vec<_> = fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().ends_with(TMP_SUFFIX))
            .collect();
        assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    }

    /// Issue 10 finding 5: the temp file was `<name>.<pid>.tmp~`, opened
    /// without O_EXCL/O_NOFOLLOW: a link planted there by someone who can
    /// write the directory made root overwrite and chmod the link's target.
    #[test]
    fn a_planted_link_at_the_old_temp_name_is_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o600)).unwrap();
        let dir = d.path().join("sub");
        fs::create_dir(&dir).unwrap();
        let planted = dir.join(format!("state.{}{TMP_SUFFIX}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        write_atomic(&dir.join("state"), b"new state", 0o644).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(
            fs::metadata(&victim).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read_to_string(dir.join("state")).unwrap(), "new state");
        assert!(fs::symlink_metadata(&planted).unwrap().is_symlink());
    }

    #[test]
    fn a_taken_temp_name_is_skipped_and_names_are_unpredictable() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let taken = d.path().join(format!("state.a{TMP_SUFFIX}"));
        std::os::unix::fs::symlink(&victim, &taken).unwrap();
        let mut names = ["a", "b"].into_iter().map(String::from);
        let (tmp, _f) =
            create_temp(d.path(), "state".as_ref(), 0o600, || names.next().unwrap()).unwrap();
        assert_eq!(tmp, d.path().join(format!("state.b{TMP_SUFFIX}")));
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        // Every name taken: an error, nothing overwritten.
        let e = create_temp(d.path(), "state".as_ref(), 0o600, || "a".into()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_ne!(random_suffix(), random_suffix());
        assert_eq!(random_suffix().len(), 16);
    }

    #[test]
    fn refuses_to_write_where_readers_would_refuse_to_read() {
        let d = umm_testsupport::FakeRoot::new();
        let dir = d.mkdir_mode("shared", 0o775);
        let e = write_atomic(&dir.join("state"), b"x", 0o644).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("writable by group or others"), "{e}");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0, "nothing written");
    }

    #[test]
    fn lock_is_exclusive_and_waits_as_asked() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/lock");
        let held = lock_exclusive(&p, Wait::No).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(matches!(lock_exclusive(&p, Wait::No), Err(LockError::Busy)));
        let t = Instant::now();
        let wait = Duration::from_millis(100);
        assert!(matches!(
            lock_exclusive(&p, Wait::UpTo(wait)),
            Err(LockError::Busy)
        ));
        assert!(t.elapsed() >= wait);
        // A holder that lets go within the wait hands the lock over.
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(held);
        });
        lock_exclusive(&p, Wait::UpTo(Duration::from_secs(30))).unwrap();
        h.join().unwrap();
    }

    #[test]
    fn a_lock_others_could_hold_is_refused() {
        let d = umm_testsupport::FakeRoot::new();
        let shared = d.mkdir_mode("lock", 0o1777);
        let e = lock_exclusive(&shared.join("umm.lock"), Wait::No).unwrap_err();
        assert!(
            matches!(&e, LockError::Unsafe(m) if m.contains("writable by group or others")),
            "{e}"
        );
        let p = d.path().join("umm.lock");
        fs::write(&p, "").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        let e = lock_exclusive(&p, Wait::No).unwrap_err();
        assert!(
            matches!(&e, LockError::Unsafe(m) if m.contains("0640")),
            "{e}"
        );
        fs::remove_file(&p).unwrap();
        fs::create_dir(&p).unwrap();
        assert!(
            lock_exclusive(&p, Wait::No).is_err(),
            "a directory is no lock"
        );
    }

    #[test]
    fn move_aside_keeps_the_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state");
        fs::write(&p, "garbage").unwrap();
        let moved = move_aside(&p, 42).unwrap();
        assert_eq!(moved, d.path().join("state.corrupt-42"));
        assert!(!p.exists());
        assert_eq!(fs::read_to_string(moved).unwrap(), "garbage");
    }
}
