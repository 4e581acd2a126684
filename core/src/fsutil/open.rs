//! The read side of [`crate::fsutil`]: the one way umm, rebootmgr, the
//! generator and umm-init open a file they read or run.
//!
//! A path (as on the running system) is walked from the root ([`Root`]) one
//! component at a time with `openat(…, O_NOFOLLOW)`, holding a descriptor of
//! each directory on the way. A symbolic link is resolved by hand, inside the
//! root (an absolute target starts again at the root, `..` never climbs above
//! it), so `/sysroot` in the initramfs and fake roots in tests resolve as the
//! real system would. When the [`Policy`] asks for trust, every directory
//! from the root down and the file itself must pass [`perms::check_stat`],
//! checked with `fstat` on the descriptor held, so no checked prefix is ever
//! looked up again.
//!
//! The last component is first opened with `O_PATH` (which opens nothing:
//! no FIFO blocks, no device is touched) and must be a regular file; only
//! then is it opened for reading (`O_NONBLOCK`, `O_NOCTTY`, and `O_NOFOLLOW`,
//! and it must be the same inode). Files are read to their end (procfs files
//! say size 0) up to the policy's size cap. Errors say which file and what
//! to do. docs/security.md, "One way to open a file".

use crate::paths::Root;
use crate::perms::{self, Link, UnsafeFile};
use std::collections::VecDeque;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

/// What a caller accepts for one kind of file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The most bytes read; a larger file is refused, not cut.
    pub max_bytes: u64,
    /// Whether the last component may be a symbolic link (resolved inside
    /// the root; links in the directories above are always resolved).
    pub follow_links: bool,
    /// The trust rule ([`perms::check_stat`]) on the file and on every
    /// directory from the root down.
    pub trusted: bool,
}

const MIB: u64 = 1 << 20;

impl Policy {
    /// umm's own data: the state file and the markers in `/run/umm`.
    pub const STATE: Policy = Policy {
        max_bytes: MIB,
        follow_links: false,
        trusted: true,
    };
    /// Config files and drop-in directories (an admin may link them to a
    /// file kept elsewhere; the link's target is checked).
    pub const CONFIG: Policy = Policy {
        max_bytes: MIB,
        follow_links: true,
        trusted: true,
    };
    /// What the kernel provides: `/proc/cmdline`, `/proc/1/cmdline`, the
    /// boot id. Not a link; procfs files are regular files of size 0.
    pub const KERNEL: Policy = Policy {
        max_bytes: MIB,
        follow_links: false,
        trusted: false,
    };
    /// GRUB's files (`grub.cfg`, `grubenv`): data umm checks and rewrites,
    /// never runs; `grubenv` is a link into the ESP on some distributions,
    /// and an ESP (vfat) has no owners to check.
    pub const BOOT: Policy = Policy {
        max_bytes: 16 * MIB,
        follow_links: true,
        trusted: false,
    };
    /// Hook and task directories and the programs in them.
    pub const EXEC: Policy = Policy {
        max_bytes: u64::MAX,
        follow_links: true,
        trusted: true,
    };

    pub const fn with_max(self, max_bytes: u64) -> Policy {
        Policy { max_bytes, ..self }
    }
}

/// Why a file could not be used. Every variant names the file.
#[derive(Debug)]
pub enum ReadError {
    /// The trust rule failed for the file or a directory above it.
    Unsafe(UnsafeFile),
    /// A FIFO, a device, a socket, a directory where a file belongs (or a
    /// file where a directory belongs).
    WrongType {
        path: PathBuf,
        found: &'static str,
        expected: &'static str,
    },
    /// The last component is a symbolic link where none is accepted.
    Symlink {
        path: PathBuf,
    },
    TooLarge {
        path: PathBuf,
        max: u64,
    },
    NotUtf8 {
        path: PathBuf,
    },
    Io {
        path: PathBuf,
        err: io::Error,
    },
}

impl ReadError {
    /// The file the error is about (as on the running system).
    pub fn path(&self) -> &Path {
        match self {
            ReadError::Unsafe(u) => &u.path,
            ReadError::WrongType { path, .. }
            | ReadError::Symlink { path }
            | ReadError::TooLarge { path, .. }
            | ReadError::NotUtf8 { path }
            | ReadError::Io { path, .. } => path,
        }
    }
}

impl ReadError {
    /// What is wrong, without the file's name (for messages that already
    /// start with it). Never any of the file's content.
    pub fn problem(&self) -> String {
        match self {
            ReadError::Unsafe(u) => format!(
                "{} (fix with: chown root:root {p} && chmod go-w {p})",
                u.problem,
                p = u.culprit.display()
            ),
            ReadError::WrongType {
                found, expected, ..
            } => format!("it is a {found}, not a {expected}: not used (replace it with a {expected})"),
            ReadError::Symlink { .. } => "it is a symbolic link, which is not followed here: not used (replace it with the file itself)".to_string(),
            ReadError::TooLarge { max, .. } => {
                format!("it is larger than {max} bytes, the most read from it: not used")
            }
            ReadError::NotUtf8 { .. } => "it is not valid UTF-8: not used".to_string(),
            ReadError::Io { err, .. } => format!("cannot read it: {err}"),
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Unsafe(u) => write!(f, "{u}"),
            other => write!(f, "{}: {}", other.path().display(), other.problem()),
        }
    }
}

impl std::error::Error for ReadError {}

/// A regular file opened for reading after the walk and the checks.
#[derive(Debug)]
pub struct Opened {
    pub file: File,
    pub stat: libc::stat,
    /// Where it is after resolving links (as on the running system).
    pub real: PathBuf,
}

/// A regular, executable file that passed the trust rule, held open
/// (`O_PATH`) so that exactly it is executed (see `tasks`).
#[derive(Debug)]
pub struct Executable {
    pub fd: OwnedFd,
    pub stat: libc::stat,
    pub real: PathBuf,
}

/// What the last component of a walk is.
pub enum Found {
    File(Executable),
    Dir,
}

/// Opens `abs` (a path of the running system) under `root` for reading.
/// `Ok(None)`: it (or a directory on the way) does not exist.
pub fn open_file(root: &Root, abs: &Path, policy: &Policy) -> Result<Option<Opened>, ReadError> {
    let Some(w) = walk(root, abs, policy.follow_links, policy.trusted)? else {
        return Ok(None);
    };
    let shown = w.real.clone();
    if kind(&w.stat) != Kind::Regular {
        return Err(ReadError::WrongType {
            path: shown,
            found: kind(&w.stat).name(),
            expected: "regular file",
        });
    }
    if w.stat.st_size as u64 > policy.max_bytes {
        return Err(ReadError::TooLarge {
            path: shown,
            max: policy.max_bytes,
        });
    }
    let fd = openat(
        w.dir.as_fd(),
        &w.name,
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY,
    )
    .map_err(|err| ReadError::Io {
        path: shown.clone(),
        err,
    })?;
    let st = fstat(fd.as_fd()).map_err(|err| ReadError::Io {
        path: shown.clone(),
        err,
    })?;
    if (st.st_dev, st.st_ino) != (w.stat.st_dev, w.stat.st_ino) {
        return Err(ReadError::Io {
            path: shown,
            err: io::Error::other("it was replaced while being opened; try again"),
        });
    }
    if policy.trusted {
        perms::check_stat(&st, abs, &root.path(&w.real), Link::File).map_err(ReadError::Unsafe)?;
    }
    Ok(Some(Opened {
        file: File::from(fd),
        stat: st,
        real: w.real,
    }))
}

/// Reads all of `abs` (see [`open_file`]), refusing more than
/// `policy.max_bytes`.
pub fn read_bounded(
    root: &Root,
    abs: &Path,
    policy: &Policy,
) -> Result<Option<Vec<u8>>, ReadError> {
    let Some(o) = open_file(root, abs, policy)? else {
        return Ok(None);
    };
    // Sized by the file's length (checked against the limit when it was
    // opened), plus one byte to see that it did not grow: no reallocation
    // while reading a config or state file at boot.
    let size = u64::try_from(o.stat.st_size)
        .unwrap_or(0)
        .min(policy.max_bytes);
    let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0).saturating_add(1));
    (&o.file)
        .take(policy.max_bytes.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|err| ReadError::Io {
            path: o.real.clone(),
            err,
        })?;
    if buf.len() as u64 > policy.max_bytes {
        return Err(ReadError::TooLarge {
            path: o.real,
            max: policy.max_bytes,
        });
    }
    Ok(Some(buf))
}

/// [`read_bounded`], as UTF-8 text.
pub fn read_text(root: &Root, abs: &Path, policy: &Policy) -> Result<Option<String>, ReadError> {
    match read_bounded(root, abs, policy)? {
        None => Ok(None),
        Some(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| ReadError::NotUtf8 {
                path: abs.to_path_buf(),
            }),
    }
}

/// The names in directory `abs` (not `.` and `..`), sorted bytewise.
/// `Ok(None)` when it does not exist.
pub fn list_dir(
    root: &Root,
    abs: &Path,
    policy: &Policy,
) -> Result<Option<Vec<OsString>>, ReadError> {
    let Some(w) = walk(root, abs, policy.follow_links, policy.trusted)? else {
        return Ok(None);
    };
    let io_err = |err| ReadError::Io {
        path: w.real.clone(),
        err,
    };
    if kind(&w.stat) != Kind::Dir {
        return Err(ReadError::WrongType {
            path: w.real.clone(),
            found: kind(&w.stat).name(),
            expected: "directory",
        });
    }
    let fd = openat(
        w.dir.as_fd(),
        &w.name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
    )
    .map_err(io_err)?;
    let st = fstat(fd.as_fd()).map_err(io_err)?;
    if (st.st_dev, st.st_ino) != (w.stat.st_dev, w.stat.st_ino) {
        return Err(io_err(io::Error::other(
            "it was replaced while being opened; try again",
        )));
    }
    let mut names = read_names(fd).map_err(io_err)?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(Some(names))
}

/// Checks that `abs` is a directory the way a reader with `policy` would
/// accept it (not a link unless the policy follows links, the trust rule on
/// it and above it), without listing it. `Ok(false)`: it does not exist.
/// For writers that must not write where readers would refuse to read.
pub fn check_dir(root: &Root, abs: &Path, policy: &Policy) -> Result<bool, ReadError> {
    let Some(w) = walk(root, abs, policy.follow_links, policy.trusted)? else {
        return Ok(false);
    };
    if kind(&w.stat) != Kind::Dir {
        return Err(ReadError::WrongType {
            path: w.real,
            found: kind(&w.stat).name(),
            expected: "directory",
        });
    }
    Ok(true)
}

/// Opens `abs` as a program to run: trusted, links resolved inside the
/// root and their targets checked. A directory is reported as
/// [`Found::Dir`] (task directories skip those); anything else that is not a
/// regular file is an error. The caller checks the execute bits.
pub fn open_exec(root: &Root, abs: &Path) -> Result<Option<Found>, ReadError> {
    let Some(w) = walk(root, abs, true, true)? else {
        return Ok(None);
    };
    match kind(&w.stat) {
        Kind::Regular => Ok(Some(Found::File(Executable {
            fd: w.fd,
            stat: w.stat,
            real: w.real,
        }))),
        Kind::Dir => Ok(Some(Found::Dir)),
        k => Err(ReadError::WrongType {
            path: w.real,
            found: k.name(),
            expected: "regular file",
        }),
    }
}

// ---- the walk ----

struct Walked {
    /// The directory that holds the last component.
    dir: OwnedFd,
    name: OsString,
    /// `O_PATH` descriptor of the last component.
    fd: OwnedFd,
    stat: libc::stat,
    /// As on the running system, links resolved.
    real: PathBuf,
}

/// Links followed in one walk before giving up (the kernel's limit).
const MAX_LINKS: u32 = 40;

fn walk(
    root: &Root,
    abs: &Path,
    follow_final: bool,
    trusted: bool,
) -> Result<Option<Walked>, ReadError> {
    let asked = abs.to_path_buf();
    let io = |path: PathBuf, err: io::Error| ReadError::Io { path, err };
    let anchor = open_dir_path(root.prefix()).map_err(|e| io(asked.clone(), e))?;
    if trusted {
        let st = fstat(anchor.as_fd()).map_err(|e| io(asked.clone(), e))?;
        perms::check_stat(&st, abs, root.prefix(), Link::Dir).map_err(ReadError::Unsafe)?;
    }
    // The directories held, root first, with their names.
    let mut stack: Vec<(OwnedFd, OsString)> = vec![(anchor, OsString::new())];
    let shown = |stack: &[(OwnedFd, OsString)], name: &OsStr| -> PathBuf {
        let mut p = PathBuf::from("/");
        for (_, n) in &stack[1..] {
            p.push(n);
        }
        p.push(name);
        p
    };
    // The link's path is built only for an error or the result: at boot
    // every file read walks its whole path, and all of them are trusted.
    let check = |st: &libc::stat, stack: &[(OwnedFd, OsString)], name: &OsStr, link: Link| {
        if perms::stat_trusted(st) {
            return Ok(());
        }
        perms::check_stat(st, abs, &root.path(shown(stack, name)), link).map_err(ReadError::Unsafe)
    };
    let mut todo: VecDeque<OsString> = components(abs);
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        if name == ".." {
            if stack.len() > 1 {
                stack.pop();
            }
            continue;
        }
        let last = todo.is_empty();
        let here = || shown(&stack, &name);
        let top = stack.last().map(|(fd, _)| fd.as_fd()).expect("root held");
        if !last {
            // O_PATH needs only search permission, as a lookup would.
            match openat(
                top,
                &name,
                libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            ) {
                Ok(fd) => {
                    if trusted {
                        let st = fstat(fd.as_fd()).map_err(|e| io(here(), e))?;
                        check(&st, &stack, &name, Link::Dir)?;
                    }
                    stack.push((fd, name));
                    continue;
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
                // A link (or not a directory): look at it below.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {}
                Err(e) => return Err(io(here(), e)),
            }
        }
        let fd = match openat(top, &name, libc::O_PATH | libc::O_NOFOLLOW) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
            Err(e) => return Err(io(here(), e)),
        };
        let st = fstat(fd.as_fd()).map_err(|e| io(here(), e))?;
        if kind(&st) == Kind::Symlink {
            if last && !follow_final {
                return Err(ReadError::Symlink { path: here() });
            }
            links += 1;
            if links > MAX_LINKS {
                return Err(io(here(), io::Error::from_raw_os_error(libc::ELOOP)));
            }
            let target = readlink_fd(fd.as_fd()).map_err(|e| io(here(), e))?;
            if target.is_absolute() {
                stack.truncate(1);
            }
            for c in components(&target).into_iter().rev() {
                todo.push_front(c);
            }
            continue;
        }
        if !last {
            // A file where a directory belongs: nothing by that path exists
            // (what a lookup would say too).
            return Ok(None);
        }
        if trusted {
            check(&st, &stack, &name, Link::File)?;
        }
        let real = here();
        let (dir, _) = stack.pop().expect("root held");
        return Ok(Some(Walked {
            dir,
            name,
            fd,
            stat: st,
            real,
        }));
    }
    Err(io(
        asked,
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "names a directory by '/', '.' or '..' rather than by its name",
        ),
    ))
}

/// The names to walk: `/` and `.` dropped, `..` kept as a name.
fn components(p: &Path) -> VecDeque<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Regular,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Unknown,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Regular => "regular file",
            Kind::Dir => "directory",
            Kind::Symlink => "symbolic link",
            Kind::Fifo => "FIFO (named pipe)",
            Kind::Socket => "socket",
            Kind::CharDevice => "character device",
            Kind::BlockDevice => "block device",
            Kind::Unknown => "file of unknown type",
        }
    }
}

fn kind(st: &libc::stat) -> Kind {
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => Kind::Regular,
        libc::S_IFDIR => Kind::Dir,
        libc::S_IFLNK => Kind::Symlink,
        libc::S_IFIFO => Kind::Fifo,
        libc::S_IFSOCK => Kind::Socket,
        libc::S_IFCHR => Kind::CharDevice,
        libc::S_IFBLK => Kind::BlockDevice,
        _ => Kind::Unknown,
    }
}

// ---- thin syscall wrappers ----

fn cstr(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in a file name"))
}

fn openat(dir: BorrowedFd<'_>, name: &OsStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    let c = cstr(name)?;
    // SAFETY: c is a valid NUL-terminated string; dir is an open descriptor.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by openat and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The root prefix itself: links in it are the caller's choice (`/sysroot`).
fn open_dir_path(p: &Path) -> io::Result<OwnedFd> {
    let c = cstr(p.as_os_str())?;
    // SAFETY: as in openat.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as in openat.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(crate) fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    // SAFETY: st is written by fstat; all-zero is a valid initial value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open; st is valid for writes.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// The target of the link `fd` (an `O_PATH|O_NOFOLLOW` descriptor) refers to.
fn readlink_fd(fd: BorrowedFd<'_>) -> io::Result<PathBuf> {
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: buf is valid for buf.len() bytes; "" with an O_PATH
        // descriptor of a link reads that link (readlinkat(2)).
        let n = unsafe {
            libc::readlinkat(
                fd.as_raw_fd(),
                c"".as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        if n < buf.len() {
            buf.truncate(n);
            return Ok(PathBuf::from(OsString::from_vec(buf)));
        }
        if buf.len() >= 1 << 16 {
            return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
        }
        buf.resize(buf.len() * 2, 0);
    }
}

/// The entries of an open directory (consumes the descriptor).
fn read_names(fd: OwnedFd) -> io::Result<Vec<OsString>> {
    let raw = fd.as_raw_fd();
    // SAFETY: fdopendir takes ownership of raw on success (closedir closes
    // it); on failure we still own it through `fd`.
    let dir = unsafe { libc::fdopendir(raw) };
    if dir.is_null() {
        return Err(io::Error::last_os_error());
    }
    std::mem::forget(fd);
    let mut names = Vec::new();
    let result = loop {
        // SAFETY: errno is thread-local; reset to tell end from error.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: dir is a valid DIR* until closedir below.
        let ent = unsafe { libc::readdir(dir) };
        if ent.is_null() {
            let err = io::Error::last_os_error();
            break if err.raw_os_error() == Some(0) {
                Ok(())
            } else {
                Err(err)
            };
        }
        // SAFETY: d_name is NUL-terminated within the entry readdir returned.
        let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) };
        let bytes = name.to_bytes();
        if bytes != b"." && bytes != b".." {
            names.push(OsString::from_vec(bytes.to_vec()));
        }
    };
    // SAFETY: dir came from fdopendir and is closed exactly once.
    unsafe { libc::closedir(dir) };
    result.map(|()| names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt};
    use std::sync::mpsc;
    use std::time::Duration;
    use umm_testsupport::fakeroot::mkdirs;
    use umm_testsupport::FakeRoot;

    fn fake() -> FakeRoot {
        umm_testsupport::require_root();
        FakeRoot::new()
    }

    fn put(root: &Path, abs: &str, text: &[u8]) -> PathBuf {
        let p = root.join(abs.trim_start_matches('/'));
        mkdirs(p.parent().unwrap());
        fs::write(&p, text).unwrap();
        p
    }

    fn mknod(p: &Path, mode: libc::mode_t, dev: libc::dev_t) {
        mkdirs(p.parent().unwrap());
        let c = CString::new(p.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid path; the tests run as root.
        assert_eq!(
            unsafe { libc::mknod(c.as_ptr(), mode, dev) },
            0,
            "mknod {p:?}"
        );
    }

    /// Runs `f` on another thread and fails (instead of hanging) after 5 s.
    fn within_5s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("the read hung (more than 5 s)")
    }

    fn read(root: &Path, abs: &str, p: Policy) -> Result<Option<Vec<u8>>, ReadError> {
        let (root, abs) = (Root::new(root), PathBuf::from(abs));
        within_5s(move || read_bounded(&root, &abs, &p))
    }

    #[test]
    fn reads_and_tells_missing() {
        let d = fake();
        put(d.path(), "/var/lib/umm/state", b"version = 1\n");
        let got = read(d.path(), "/var/lib/umm/state", Policy::STATE).unwrap();
        assert_eq!(got.as_deref(), Some(&b"version = 1\n"[..]));
        assert!(read(d.path(), "/var/lib/umm/none", Policy::STATE)
            .unwrap()
            .is_none());
        assert!(read(d.path(), "/nodir/x/y", Policy::STATE)
            .unwrap()
            .is_none());
        let e = read_text(
            &Root::new(d.path()),
            Path::new("/var/lib/umm"),
            &Policy::STATE,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("is a directory, not a regular file"),
            "{e}"
        );
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let d = fake();
        for (abs, p) in [
            ("/var/lib/umm/state", Policy::STATE),
            ("/etc/umm/umm.toml", Policy::CONFIG),
            ("/proc/cmdline", Policy::KERNEL),
        ] {
            mknod(&d.path().join(&abs[1..]), libc::S_IFIFO | 0o644, 0);
            let e = read(d.path(), abs, p).unwrap_err();
            assert!(
                e.to_string()
                    .contains("is a FIFO (named pipe), not a regular file"),
                "{e}"
            );
            assert!(e.to_string().starts_with(abs), "{e}");
        }
        // A FIFO where a directory belongs: nothing by that path exists.
        mknod(&d.path().join("run"), libc::S_IFIFO | 0o644, 0);
        assert!(read(d.path(), "/run/umm/boot", Policy::STATE)
            .unwrap()
            .is_none());
    }

    #[test]
    fn links_to_devices_are_refused_and_never_opened() {
        let d = fake();
        // A real /dev/zero (1,5) inside the fake root.
        mknod(
            &d.path().join("dev/zero"),
            libc::S_IFCHR | 0o666,
            libc::makedev(1, 5),
        );
        symlink(
            "/dev/zero",
            put(d.path(), "/etc/umm/x", b"").with_file_name("umm.toml"),
        )
        .unwrap();
        mkdirs(&d.path().join("var/lib/umm"));
        symlink("/dev/zero", d.path().join("var/lib/umm/state")).unwrap();
        // Where links are not followed: refused as a link.
        let e = read(d.path(), "/var/lib/umm/state", Policy::STATE).unwrap_err();
        assert!(e.to_string().contains("is a symbolic link"), "{e}");
        // Where they are: the target is a device, refused before any open
        // for reading (O_PATH opens nothing).
        let e = read(d.path(), "/etc/umm/umm.toml", Policy::CONFIG).unwrap_err();
        assert!(
            e.to_string()
                .contains("/dev/zero: it is a character device, not a regular file"),
            "{e}"
        );
        // And the device node itself.
        let e = read(d.path(), "/dev/zero", Policy::KERNEL).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
    }

    #[test]
    fn oversized_files_are_refused_with_the_limit() {
        let d = fake();
        put(
            d.path(),
            "/etc/umm/umm.toml",
            &vec![b'#'; (MIB + 1) as usize],
        );
        let e = read(d.path(), "/etc/umm/umm.toml", Policy::CONFIG).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "/etc/umm/umm.toml: it is larger than {MIB} bytes, the most read from it: not used"
            )
        );
        // procfs files say size 0: the cap holds while reading.
        let line = read(Path::new("/"), "/proc/cmdline", Policy::KERNEL)
            .unwrap()
            .unwrap();
        assert!(!line.is_empty());
        let e = read(Path::new("/"), "/proc/cmdline", Policy::KERNEL.with_max(1)).unwrap_err();
        assert!(matches!(e, ReadError::TooLarge { max: 1, .. }), "{e}");
    }

    #[test]
    fn links_resolve_inside_the_root() {
        let d = fake();
        put(d.path(), "/etc/real.toml", b"inside");
        mkdirs(&d.path().join("etc/umm"));
        // Absolute, and climbing above the root with '..': both stay inside.
        symlink(
            "/../../../../etc/real.toml",
            d.path().join("etc/umm/umm.toml"),
        )
        .unwrap();
        let got = read(d.path(), "/etc/umm/umm.toml", Policy::CONFIG).unwrap();
        assert_eq!(got.as_deref(), Some(&b"inside"[..]));
        // A directory link on the way is followed even where the last
        // component may not be a link (e.g. /var -> /data/var).
        put(d.path(), "/data/var/lib/umm/state", b"v");
        symlink("data/var", d.path().join("var")).unwrap();
        let got = read(d.path(), "/var/lib/umm/state", Policy::STATE).unwrap();
        assert_eq!(got.as_deref(), Some(&b"v"[..]));
        // Loops end.
        symlink("loop2", d.path().join("loop1")).unwrap();
        symlink("loop1", d.path().join("loop2")).unwrap();
        let e = read(d.path(), "/loop1", Policy::CONFIG).unwrap_err();
        assert!(e.to_string().contains("symbolic links"), "{e}");
    }

    #[test]
    fn trust_is_checked_on_the_whole_chain() {
        let d = fake();
        let f = put(d.path(), "/etc/umm/umm.toml", b"x = 1\n");
        assert!(read(d.path(), "/etc/umm/umm.toml", Policy::CONFIG).is_ok());
        fs::set_permissions(d.path().join("etc"), fs::Permissions::from_mode(0o775)).unwrap();
        let e = read(d.path(), "/etc/umm/umm.toml", Policy::CONFIG).unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("etc above it is writable by group or others (mode 0775)"),
            "{s}"
        );
        // Untrusted reads do not care.
        assert!(read(d.path(), "/etc/umm/umm.toml", Policy::KERNEL).is_ok());
        fs::set_permissions(d.path().join("etc"), fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(&f, Some(65534), None).unwrap();
        let e = read(d.path(), "/etc/umm/umm.toml", Policy::CONFIG).unwrap_err();
        assert!(e.to_string().contains("it is owned by uid 65534"), "{e}");
        // A link's target chain is checked, not the link's.
        std::os::unix::fs::chown(&f, Some(0), None).unwrap();
        let user = d.path().join("home/user");
        put(d.path(), "/home/user/umm.toml", b"x = 1\n");
        std::os::unix::fs::chown(&user, Some(65534), None).unwrap();
        fs::remove_file(&f).unwrap();
        symlink("/home/user/umm.toml", &f).unwrap();
        let e = read(d.path(), "/etc/umm/umm.toml", Policy::CONFIG).unwrap_err();
        assert!(
            e.to_string()
                .contains("home/user above it is owned by uid 65534"),
            "{e}"
        );
    }

    #[test]
    fn lists_a_directory_sorted() {
        let d = fake();
        for n in ["b.toml", "a.toml", "C"] {
            put(d.path(), &format!("/etc/umm/umm.toml.d/{n}"), b"");
        }
        let names = list_dir(
            &Root::new(d.path()),
            Path::new("/etc/umm/umm.toml.d"),
            &Policy::CONFIG,
        )
        .unwrap()
        .unwrap();
        assert_eq!(names, ["C", "a.toml", "b.toml"]);
        assert!(
            list_dir(&Root::new(d.path()), Path::new("/none"), &Policy::CONFIG)
                .unwrap()
                .is_none()
        );
    }
}
