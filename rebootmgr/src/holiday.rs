//! `--check-holidays`: no reboots on the days listed in a calendar file.
//!
//! The Python tool asked a library for Germany's public holidays; here the
//! operator lists the days (any country, company days too) in
//! /etc/rebootmgr/holidays: one `YYYY-MM-DD` a line, optionally followed by a
//! name; `#` starts a comment. The date is the node's local date.

use std::path::Path;

/// A calendar day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Day {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

impl std::fmt::Display for Day {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn parse_day(s: &str) -> Option<Day> {
    let mut it = s.splitn(3, '-');
    let (y, m, d) = (it.next()?, it.next()?, it.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let day = Day {
        year: y.parse().ok()?,
        month: m.parse().ok()?,
        day: d.parse().ok()?,
    };
    ((1..=12).contains(&day.month) && (1..=31).contains(&day.day)).then_some(day)
}

/// The calendar's days with their names. A line that is not a date is an
/// error naming the file and line: a typo must not silently allow a reboot.
pub fn parse(file: &Path, text: &str) -> Result<Vec<(Day, String)>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (date, name) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let day = parse_day(date).ok_or_else(|| {
            format!(
                "{}:{}: {date:?} is not a date (one YYYY-MM-DD a line, optionally a name after it)",
                file.display(),
                i + 1
            )
        })?;
        out.push((day, name.trim().to_string()));
    }
    Ok(out)
}

/// Today in the node's local time zone.
pub fn today() -> Day {
    // SAFETY: localtime_r writes only into `tm`, which we own.
    unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&t, &mut tm);
        Day {
            year: tm.tm_year + 1900,
            month: (tm.tm_mon + 1) as u32,
            day: tm.tm_mday as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_lines() {
        let f = Path::new("/etc/rebootmgr/holidays");
        let days = parse(
            f,
            "# German holidays\n2026-12-25 Christmas Day\n\n2026-12-26\t2nd day # comment\n",
        )
        .unwrap();
        let d = |year, month, day| Day { year, month, day };
        assert_eq!(
            days,
            vec![
                (d(2026, 12, 25), "Christmas Day".to_string()),
                (d(2026, 12, 26), "2nd day".to_string())
            ]
        );
        assert_eq!(d(2026, 1, 5).to_string(), "2026-01-05");
        for bad in [
            "12/25/2026",
            "2026-13-01",
            "2026-1-1",
            "Christmas 2026-12-25",
        ] {
            let e = parse(f, &format!("2026-01-01\n{bad}\n")).unwrap_err();
            assert!(e.starts_with("/etc/rebootmgr/holidays:2:"), "{bad}: {e}");
        }
        let t = today();
        assert!((1..=12).contains(&t.month) && (1..=31).contains(&t.day) && t.year >= 2024);
    }
}
