//! The one `log::Log` of every umm binary (the generator, `umm-init`, the
//! initramfs hook, `umm`, `rebootmgr`). It writes `<prio>name[pid]: msg` to
//! /dev/kmsg in early boot (the journal picks it up later, under `name`), or
//! `name[pid]: msg` to stderr (with `warning:`/`error:` before the message
//! at those levels). When stderr is the journal (systemd sets
//! `JOURNAL_STREAM` to its device:inode), `<prio>msg` only: the journal adds
//! the identifier and pid itself and takes the priority from the prefix, so
//! `journalctl -p warning` works and nothing is doubled. Only our own crates' records are kept (an HTTP client's
//! debug output is noise). No threads, never panics.

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::Mutex;

/// Where the records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// /dev/kmsg (stderr when it cannot be opened): early boot.
    Kmsg,
    Stderr,
}

pub struct Logger {
    name: &'static str,
    kmsg: Option<Mutex<std::fs::File>>,
    max: log::LevelFilter,
    /// stderr is a journal stream.
    journal: bool,
}

/// Whether stderr is the journal: `JOURNAL_STREAM` (`<dev>:<inode>`) names
/// the file stderr is (what sd_journal_stream_fd's users are told to check).
pub fn stderr_is_journal() -> bool {
    let Ok(v) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    // SAFETY: fstat on fd 2 into a zeroed stat buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(2, &mut st) } != 0 {
        return false;
    }
    st.st_dev as u64 == dev && st.st_ino as u64 == ino
}

/// A line for stderr, as the logger writes it: `<prio>msg` to the journal,
/// `name[pid]: [error: |warning: ]msg` elsewhere.
fn stderr_line(
    name: &str,
    journal: bool,
    level: log::Level,
    msg: &dyn std::fmt::Display,
) -> String {
    if journal {
        return format!("<{}>{msg}\n", syslog_prio(level));
    }
    let label = match level {
        log::Level::Error => "error: ",
        log::Level::Warn => "warning: ",
        _ => "",
    };
    format!("{name}[{}]: {label}{msg}\n", std::process::id())
}

fn syslog_prio(l: log::Level) -> u8 {
    match l {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// Records from these crates only (module paths start with the crate name).
fn ours(target: &str) -> bool {
    target.starts_with("umm") || target.starts_with("rebootmgr")
}

impl Logger {
    /// The stderr form of a record.
    fn stderr_line(&self, level: log::Level, msg: &std::fmt::Arguments) -> String {
        stderr_line(self.name, self.journal, level, msg)
    }
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= self.max && ours(m.target())
    }

    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        if let Some(k) = &self.kmsg {
            let line = format!(
                "<{}>{}[{}]: {}\n",
                syslog_prio(r.level()),
                self.name,
                std::process::id(),
                r.args()
            );
            if let Ok(mut f) = k.lock() {
                // One write() per record: kmsg takes one record per write.
                if f.write_all(line.as_bytes()).is_ok() {
                    return;
                }
            }
        }
        let _ = std::io::stderr().write_all(self.stderr_line(r.level(), r.args()).as_bytes());
    }

    fn flush(&self) {}
}

/// The level `UMM_LOG_LEVEL` (`error`, `warn`, `info`, `debug`) asks for,
/// else `default`.
pub fn level_from_env(default: log::LevelFilter) -> log::LevelFilter {
    match std::env::var("UMM_LOG_LEVEL").as_deref() {
        Ok("debug") => log::LevelFilter::Debug,
        Ok("info") => log::LevelFilter::Info,
        Ok("warn") => log::LevelFilter::Warn,
        Ok("error") => log::LevelFilter::Error,
        _ => default,
    }
}

/// Installs the logger for the program `name` (the journal's identifier).
pub fn init(name: &'static str, sink: Sink, max: log::LevelFilter) {
    let kmsg = match sink {
        Sink::Kmsg => OpenOptions::new()
            .write(true)
            .open("/dev/kmsg")
            .ok()
            .map(Mutex::new),
        Sink::Stderr => None,
    };
    let journal = stderr_is_journal();
    let logger = Box::new(Logger {
        name,
        kmsg,
        max,
        journal,
    });
    if log::set_boxed_logger(logger).is_ok() {
        log::set_max_level(max);
    }
}

/// The boot-path programs: kmsg when run by the init system, else stderr;
/// info unless `UMM_LOG_LEVEL` says otherwise.
pub fn init_boot(name: &'static str, to_kmsg: bool) {
    let sink = if to_kmsg { Sink::Kmsg } else { Sink::Stderr };
    init(name, sink, level_from_env(log::LevelFilter::Info));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_lines_name_the_program_and_the_level() {
        let l = Logger {
            name: "umm-x",
            kmsg: None,
            max: log::LevelFilter::Info,
            journal: false,
        };
        let pid = std::process::id();
        assert_eq!(
            l.stderr_line(log::Level::Warn, &format_args!("a {}", 1)),
            format!("umm-x[{pid}]: warning: a 1\n")
        );
        assert_eq!(
            l.stderr_line(log::Level::Info, &format_args!("b")),
            format!("umm-x[{pid}]: b\n")
        );
        let j = Logger { journal: true, ..l };
        assert_eq!(
            j.stderr_line(log::Level::Warn, &format_args!("a {}", 1)),
            "<4>a 1\n"
        );
        assert_eq!(
            j.stderr_line(log::Level::Info, &format_args!("b")),
            "<6>b\n"
        );
        assert_eq!(
            j.stderr_line(log::Level::Error, &format_args!("c")),
            "<3>c\n"
        );
        assert!(ours("umm_core::tasks") && ours("rebootmgr::flow"));
        assert!(!ours("ureq::unit"));
    }
}
