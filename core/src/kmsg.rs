//! A `log::Log` for early boot: writes `<prio>name[pid]: msg` to /dev/kmsg
//! (the journal picks it up later), or to stderr when not started by the
//! init system. No allocation-heavy formatting, no threads, never panics.

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::Mutex;

pub struct KmsgLogger {
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

impl log::Log for KmsgLogger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= self.max
    }

    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let line = format!(
            "<{}>{}[{}]: {}\n",
            syslog_prio(r.level()),
            self.name,
            std::process::id(),
            r.args()
        );
        if let Some(k) = &self.kmsg {
            if let Ok(mut f) = k.lock() {
                // One write() per record: kmsg takes one record per write.
                if f.write_all(line.as_bytes()).is_ok() {
                    return;
                }
            }
        }
        // stderr without the priority prefix, as a human expects.
        let text = line.split_once('>').map(|(_, t)| t).unwrap_or(&line);
        let _ = std::io::stderr().write_all(text.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the logger. `to_kmsg` selects /dev/kmsg (falls back to stderr if
/// it cannot be opened). `UMM_LOG_LEVEL=debug` raises verbosity.
pub fn init(name: &'static str, to_kmsg: bool) {
    let kmsg = if to_kmsg {
        OpenOptions::new()
            .write(true)
            .open("/dev/kmsg")
            .ok()
            .map(Mutex::new)
    } else {
        None
    };
    let max = match std::env::var("UMM_LOG_LEVEL").as_deref() {
        Ok("debug") => log::LevelFilter::Debug,
        Ok("warn") => log::LevelFilter::Warn,
        Ok("error") => log::LevelFilter::Error,
        _ => log::LevelFilter::Info,
    };
    let logger = Box::new(KmsgLogger { name, kmsg, max });
    if log::set_boxed_logger(logger).is_ok() {
        log::set_max_level(max);
    }
}
