//! The one `log::Log` of every umm binary (the generator, `umm-init`, the
//! initramfs hook, `umm`, `rebootmgr`). It writes `<prio>name[pid]: msg` to
//! /dev/kmsg in early boot (the journal picks it up later, under `name`), or
//! `name[pid]: msg` to stderr (with `warning:`/`error:` before the message
//! at those levels). Only our own crates' records are kept (an HTTP client's
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
        let label = match level {
            log::Level::Error => "error: ",
            log::Level::Warn => "warning: ",
            _ => "",
        };
        format!("{}[{}]: {label}{msg}\n", self.name, std::process::id())
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
    let logger = Box::new(Logger { name, kmsg, max });
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
        assert!(ours("umm_core::tasks") && ours("rebootmgr::flow"));
        assert!(!ours("ureq::unit"));
    }
}
