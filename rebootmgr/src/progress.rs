//! Long waits, as a systemd service shows them: `sd_notify` `STATUS=` lines
//! (what `systemctl status` prints while the unit is "activating"), and a
//! log line with elapsed and remaining time when something changes or every
//! [`LOG_EVERY`], instead of the same line at every poll.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// A wait logs its progress at most this often while nothing changes.
pub const LOG_EVERY: Duration = Duration::from_secs(30);
/// `STATUS=` is sent at most this often.
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// Sends `STATUS=<msg>` to `$NOTIFY_SOCKET` (a path, or `@name` for an
/// abstract socket). Without the variable, or when sending fails, nothing
/// happens: the status line is a courtesy, never a reason to fail.
pub fn notify_status(msg: &str) {
    let Some(addr) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return;
    };
    let line = format!("STATUS={}", msg.replace('\n', " "));
    let addr = addr.to_string_lossy().into_owned();
    let _ = if let Some(name) = addr.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .and_then(|a| sock.send_to_addr(line.as_bytes(), &a))
    } else {
        sock.send_to(line.as_bytes(), &addr)
    };
}

fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs())
}

/// One wait: `what` (e.g. "settle wait"), optionally with a total.
pub struct Progress {
    what: String,
    start: Instant,
    total: Option<Duration>,
    last_log: Option<(Instant, String)>,
    last_status: Option<Instant>,
}

impl Progress {
    pub fn new(what: &str, total: Option<Duration>, now: Instant) -> Progress {
        Progress {
            what: what.to_string(),
            start: now,
            total,
            last_log: None,
            last_status: None,
        }
    }

    /// `what[: detail] (E s elapsed[, R s left])`.
    pub fn line(&self, detail: Option<&str>, now: Instant) -> String {
        let elapsed = now.saturating_duration_since(self.start);
        let mut s = self.what.clone();
        if let Some(d) = detail {
            s.push_str(": ");
            s.push_str(d);
        }
        match self.total {
            Some(t) => format!(
                "{s} ({} elapsed, {} left)",
                secs(elapsed),
                secs(t.saturating_sub(elapsed))
            ),
            None => format!("{s} ({} elapsed)", secs(elapsed)),
        }
    }

    /// What to log now, if anything: the first call, a new `detail`, or
    /// [`LOG_EVERY`] since the last line.
    pub fn log_line(&mut self, detail: Option<&str>, now: Instant) -> Option<String> {
        let key = detail.unwrap_or("").to_string();
        let due = match &self.last_log {
            None => true,
            Some((at, d)) => *d != key || now.saturating_duration_since(*at) >= LOG_EVERY,
        };
        if !due {
            return None;
        }
        self.last_log = Some((now, key));
        Some(self.line(detail, now))
    }

    /// Logs (when due) and sends the status line (at most once a second).
    pub fn tick(&mut self, detail: Option<&str>) {
        let now = Instant::now();
        if let Some(l) = self.log_line(detail, now) {
            log::info!("{l}");
        }
        if self
            .last_status
            .is_none_or(|t| now.saturating_duration_since(t) >= STATUS_EVERY)
        {
            self.last_status = Some(now);
            notify_status(&self.line(detail, now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_elapsed_and_left_and_repeat_only_when_due() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut p = Progress::new("settle wait", Some(Duration::from_secs(130)), t0);
        assert_eq!(
            p.log_line(None, at(0)).as_deref(),
            Some("settle wait (0 s elapsed, 130 s left)")
        );
        assert_eq!(p.log_line(None, at(2)), None, "not every poll");
        assert_eq!(p.log_line(None, at(29)), None);
        assert_eq!(
            p.log_line(None, at(30)).as_deref(),
            Some("settle wait (30 s elapsed, 100 s left)")
        );
        assert_eq!(
            p.line(None, at(200)),
            "settle wait (200 s elapsed, 0 s left)"
        );

        let mut h = Progress::new("waiting until healthy", None, t0);
        assert!(h.log_line(Some("web failing"), at(0)).is_some());
        assert_eq!(h.log_line(Some("web failing"), at(2)), None);
        assert_eq!(
            h.log_line(Some("db failing"), at(4)).as_deref(),
            Some("waiting until healthy: db failing (4 s elapsed)"),
            "a new reason is logged at once"
        );
    }
}
