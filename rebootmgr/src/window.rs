//! Reboot windows: a node starts a reboot only inside one of its windows,
//! at its own (spread) time, and only when the settle wait and the pre-boot
//! tasks' timeouts still end inside the window (docs/rebootmgr.md, "Reboot
//! windows").
//!
//! A window is days of the week, a local start time, a duration and a time
//! zone (the system's by default). Local times come from the system tz
//! database through `jiff`: on a day whose start time falls in a DST gap the
//! window opens at the first valid time after it (02:30 on the spring-forward
//! day in Europe/Berlin is 03:30 CEST), in a fold at the earlier instant; the
//! duration is elapsed time, so a 4 h window across a DST change is 4 real hours.
//!
//! The spread: node N may start no earlier than `start + offset(N)`, where
//! `offset` is a hash (FNV-1a 64) of the node name modulo half the usable
//! span (`duration - needed`). It is deterministic, so the same node asks at
//! the same point of each window, 50 nodes are spread over the first half of
//! it, and each node keeps at least the second half of the usable span.

use crate::exit::{Abort, Exit};
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use std::time::Duration;
use umm_coord::consul::Consul;
use umm_coord::protocol::Keys;

/// The longest window: a week (a longer one would be "always").
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 86400);

/// The test clock: an RFC 3339 time ("2026-03-29T01:30:00Z") that rebootmgr
/// takes as "now" for the window decision only (documented for tests).
pub const NOW_ENV: &str = "REBOOTMGR_NOW";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Monday = 0 … Sunday = 6.
    pub days: [bool; 7],
    /// The dates it may open on (a calendar expression's date part); any
    /// date by default. Both this and `days` must match.
    pub dates: Dates,
    /// Minutes after local midnight.
    pub start: u32,
    pub duration: Duration,
    /// IANA name; `None`: the system's time zone.
    pub time_zone: Option<String>,
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day_index(s: &str) -> Option<usize> {
    let s = s.trim().to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|d| s.len() >= 3 && d.starts_with(&s[..3]) && full_day_ok(&s))
}

/// "mon", "monday", "Mon" are Monday; "monkey" is not.
fn full_day_ok(s: &str) -> bool {
    const FULL: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    s.len() == 3 || FULL.contains(&s)
}

/// `["Mon..Fri", "Sun"]`: days and ranges (a range may wrap: "Sat..Mon").
pub fn parse_days(items: &[String]) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    if items.is_empty() {
        return Err("expected at least one day, e.g. [\"Mon..Fri\"]".into());
    }
    for item in items {
        let bad = || format!("{item:?} is not a day or range (Mon, Tue, … Sun, or \"Mon..Fri\")");
        match item.split_once("..") {
            Some((a, b)) => {
                let (a, b) = (day_index(a).ok_or_else(bad)?, day_index(b).ok_or_else(bad)?);
                let mut d = a;
                loop {
                    days[d] = true;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days[day_index(item).ok_or_else(bad)?] = true,
        }
    }
    Ok(days)
}

/// "HH:MM" (24 h).
pub fn parse_time(s: &str) -> Result<u32, String> {
    let bad = || "expected a time of day \"HH:MM\" (24 h), e.g. \"02:00\"".to_string();
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// A time zone by IANA name from the system database, or the system's own.
pub fn zone(name: Option<&str>) -> Result<TimeZone, String> {
    match name {
        None => Ok(TimeZone::system()),
        Some(n) => TimeZone::get(n).map_err(|_| {
            format!("unknown time zone {n:?} (an IANA name from /usr/share/zoneinfo, e.g. \"Europe/Berlin\"; is tzdata installed?)")
        }),
    }
}

/// A set of values of a date field: `N`, `N..M`, `N/R` (N, N+R, … to the
/// field's end), `N..M/R` (systemd.time(7)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Values {
    from: u32,
    to: u32,
    step: u32,
}

impl Values {
    fn has(&self, v: u32) -> bool {
        v >= self.from && v <= self.to && (v - self.from).is_multiple_of(self.step)
    }
}

/// A calendar expression's date part, `[YEAR-]MONTH-DAY` or
/// `[YEAR-]MONTH~DAY` (`~`: the DAY-th last day of the month; `~D/R`: from
/// that day on, every R days to the month's end). `None` is `*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dates {
    years: Option<Vec<Values>>,
    months: Option<Vec<Values>>,
    days: Option<Vec<Values>>,
    from_end: bool,
    /// As written (for `rebootmgr status`).
    text: String,
}

impl Dates {
    /// Whether the local date `d` is one of these dates.
    pub fn matches(&self, d: Date) -> bool {
        let ok =
            |f: &Option<Vec<Values>>, v: u32| f.as_ref().is_none_or(|l| l.iter().any(|x| x.has(v)));
        if !ok(&self.years, d.year() as u32) || !ok(&self.months, d.month() as u32) {
            return false;
        }
        let day = d.day() as u32;
        if !self.from_end {
            return ok(&self.days, day);
        }
        // k = 1 on the last day of the month, 2 on the one before, …
        let k = d.days_in_month() as u32 - day + 1;
        self.days.as_ref().is_none_or(|l| {
            l.iter().any(|x| {
                k <= x.from && (x.from - k).is_multiple_of(x.step) && (x.to > x.from || k == x.from)
            })
        })
    }

    /// Any date at all (`*-*-*`).
    pub fn is_any(&self) -> bool {
        self.years.is_none() && self.months.is_none() && self.days.is_none()
    }
}

/// One date field: `*` or a comma list of [`Values`], each within `lo..=hi`.
fn parse_field(s: &str, what: &str, lo: u32, hi: u32) -> Result<Option<Vec<Values>>, String> {
    if s == "*" {
        return Ok(None);
    }
    let num = |t: &str| -> Result<u32, String> {
        let v: u32 = t.parse().map_err(|_| {
            format!("{what} {s:?}: {t:?} is not a number (write N, N..M, N/R, N..M/R or *)")
        })?;
        if v < lo || v > hi {
            return Err(format!("{what} {s:?}: {v} is not from {lo} to {hi}"));
        }
        Ok(v)
    };
    let mut out = Vec::new();
    for item in s.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, st)) => {
                let st: u32 = st.parse().ok().filter(|v| *v >= 1).ok_or_else(|| {
                    format!("{what} {s:?}: repetition {st:?} is not a number from 1")
                })?;
                (r, Some(st))
            }
            None => (item, None),
        };
        let (from, to) = match range.split_once("..") {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let a = num(range)?;
                (a, if step.is_some() { hi } else { a })
            }
        };
        if from > to {
            return Err(format!("{what} {s:?}: the range {range:?} runs backwards"));
        }
        out.push(Values {
            from,
            to,
            step: step.unwrap_or(1),
        });
    }
    Ok(Some(out))
}

/// `[YEAR-]MONTH-DAY` or `[YEAR-]MONTH~DAY`.
fn parse_dates(tok: &str) -> Result<Dates, String> {
    let (ym, day, from_end) = match tok.split_once('~') {
        Some((ym, d)) => (ym, d, true),
        None => match tok.rsplit_once('-') {
            Some((ym, d)) => (ym, d, false),
            None => {
                return Err(format!(
                    "{tok:?} is not a date (write [YEAR-]MONTH-DAY, e.g. *-*-01..07)"
                ))
            }
        },
    };
    let (year, month) = match ym.split_once('-') {
        Some((y, m)) => (y, m),
        None => ("*", ym),
    };
    if year != "*"
        && year
            .split([',', '.', '/'])
            .any(|y| !y.is_empty() && y.len() != 4)
    {
        return Err(format!("{tok:?}: write the year with four digits"));
    }
    let days = parse_field(day, "day", 1, 31)?;
    if from_end {
        for v in days.iter().flatten() {
            if v.to > v.from && v.to != 31 {
                return Err(format!("{tok:?}: after ~ only D or D/R (the D-th last day, or from it on every R days)"));
            }
            if v.to > v.from && v.step >= v.from {
                return Err(format!(
                    "{tok:?}: ~{}/{} repeats past the month's end (write ~{})",
                    v.from, v.step, v.from
                ));
            }
        }
    }
    Ok(Dates {
        years: parse_field(year, "year", 1970, 2199)?,
        months: parse_field(month, "month", 1, 12)?,
        days,
        from_end,
        text: tok.to_string(),
    })
}

/// What a calendar expression says: the weekdays, the dates, the start
/// time of day (minutes) and the time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    pub days: [bool; 7],
    pub dates: Dates,
    pub start: u32,
    pub time_zone: Option<String>,
}

/// A systemd calendar expression (systemd.time(7)) with one time of day:
/// `[WEEKDAYS] [[YEAR-]MONTH-DAY] HH:MM[:00] [TIME ZONE]`, e.g.
/// `"Mon..Fri 02:00"`, `"Sat,Sun *-*-* 22:30:00 Europe/Berlin"`, `"Sun
/// *-*-01..07 02:00"` (the first Sunday of the month), `"*-*~01 03:00"`
/// (the last day of the month), or `daily` / `weekly` / `monthly`.
/// Repetitions and lists in the time (`*:0/15`, `02,14:00`) are refused:
/// a window opens once on each of its days.
pub fn parse_calendar(expr: &str) -> Result<Calendar, String> {
    let unsupported = || {
        "expected a calendar expression with one time of day: [WEEKDAYS] [[YEAR-]MONTH-DAY] HH:MM[:00] [TIME ZONE], e.g. \"Mon..Fri 02:00\" or \"Sun *-*-01..07 02:00\"".to_string()
    };
    let cal = |days, dates| Calendar {
        days,
        dates,
        start: 0,
        time_zone: None,
    };
    match expr.trim() {
        "daily" => return Ok(cal([true; 7], Dates::default())),
        "weekly" => return Ok(cal(parse_days(&["Mon".into()])?, Dates::default())),
        "monthly" => return Ok(cal([true; 7], parse_dates("*-*-01")?)),
        _ => {}
    }
    let mut tokens: Vec<&str> = expr.split_whitespace().collect();
    let mut days = [true; 7];
    if tokens
        .first()
        .is_some_and(|t| t.starts_with(|c: char| c.is_ascii_alphabetic()) && !t.contains(':'))
        && tokens.len() > 1
    {
        let items: Vec<String> = tokens[0]
            .split(',')
            .map(|d| match d.split_once('-') {
                Some((a, b)) => format!("{a}..{b}"),
                None => d.to_string(),
            })
            .collect();
        // systemd has no wrapping range ("Fri..Mon"): refused here too, so a
        // calendar expression means what systemd-analyze says it means.
        for i in &items {
            if let Some((a, b)) = i.split_once("..") {
                if day_index(a) > day_index(b) {
                    return Err(format!("{i:?}: a range must not wrap past Sunday in a calendar expression (write \"Fri..Sun,Mon\")"));
                }
            }
        }
        days = parse_days(&items)?;
        tokens.remove(0);
    }
    let mut dates = Dates::default();
    if tokens
        .first()
        .is_some_and(|t| !t.contains(':') && (t.contains('-') || t.contains('~')))
    {
        dates = parse_dates(tokens[0])?;
        tokens.remove(0);
    }
    let time = tokens.first().ok_or_else(unsupported)?;
    let (hm, secs) = match time.matches(':').count() {
        1 => (*time, "00"),
        2 => time.rsplit_once(':').ok_or_else(unsupported)?,
        _ => return Err(unsupported()),
    };
    if secs != "00" {
        return Err("the time must be on a whole minute (seconds 00)".into());
    }
    let start = parse_time(hm).map_err(|_| unsupported())?;
    let time_zone = match &tokens[1..] {
        [] => None,
        [tz] => {
            zone(Some(tz))?;
            Some(tz.to_string())
        }
        _ => return Err(unsupported()),
    };
    Ok(Calendar {
        days,
        dates,
        start,
        time_zone,
    })
}

/// One `[[window]]` table. Keys: `days`, `start`, `duration`, `time_zone`,
/// or `calendar` (instead of the first three) and `duration`. Errors name
/// the key (the caller adds the file or Consul key).
pub fn parse_window(t: &toml::Table) -> Result<Window, String> {
    let mut days = None;
    let mut dates = Dates::default();
    let mut start = None;
    let mut duration = None;
    let mut time_zone = None;
    if let Some(v) = t.get("calendar") {
        if let Some(k) = ["days", "start", "time_zone"]
            .iter()
            .find(|k| t.contains_key(**k))
        {
            return Err(format!(
                "key '{k}': give either calendar or days/start/time_zone, not both"
            ));
        }
        let expr = v
            .as_str()
            .ok_or("key 'calendar': expected a string such as \"Mon..Fri 02:00\"")?;
        let cal = parse_calendar(expr).map_err(|e| format!("key 'calendar': {e}"))?;
        (days, dates, start, time_zone) =
            (Some(cal.days), cal.dates, Some(cal.start), cal.time_zone);
    }
    for (k, v) in t {
        let bad = |want: &str| format!("key '{k}': expected {want}");
        match k.as_str() {
            "calendar" => {}
            "days" => {
                let items: Option<Vec<String>> = v
                    .as_array()
                    .and_then(|a| a.iter().map(|x| x.as_str().map(str::to_string)).collect());
                let items = items.ok_or_else(|| bad("a list of days such as [\"Mon..Fri\"]"))?;
                days = Some(parse_days(&items).map_err(|e| format!("key '{k}': {e}"))?);
            }
            "start" => {
                let s = v.as_str().ok_or_else(|| bad("a time \"HH:MM\""))?;
                start = Some(parse_time(s).map_err(|e| format!("key '{k}': {e}"))?);
            }
            "duration" => {
                let d = crate::conf::duration_value(v).map_err(|e| format!("key '{k}': {e}"))?;
                if d < Duration::from_secs(60) || d > MAX_DURATION {
                    return Err(format!("key '{k}': must be from 1min to 7d"));
                }
                duration = Some(d);
            }
            "time_zone" => {
                let s = v.as_str().ok_or_else(|| bad("an IANA time zone name"))?;
                if !s.is_empty() {
                    zone(Some(s)).map_err(|e| format!("key '{k}': {e}"))?;
                    time_zone = Some(s.to_string());
                }
            }
            other => {
                return Err(format!(
                    "unknown key {} (a window has days, start, duration, time_zone, or calendar and duration)",
                    umm_core::config::shown_key(other)
                ))
            }
        }
    }
    let missing =
        |k: &str| format!("key '{k}' is missing (a window needs days, start and duration)");
    Ok(Window {
        days: days.unwrap_or([true; 7]),
        dates,
        start: start.ok_or_else(|| missing("start"))?,
        duration: duration.ok_or_else(|| missing("duration"))?,
        time_zone,
    })
}

/// The value of `window` (an array of tables), from a file or from Consul.
pub fn parse_windows(v: &toml::Value) -> Result<Vec<Window>, String> {
    let arr = v
        .as_array()
        .ok_or("expected [[window]] tables (an array of tables)")?;
    arr.iter()
        .enumerate()
        .map(|(i, w)| {
            let t = w
                .as_table()
                .ok_or_else(|| format!("window {}: expected a table", i + 1))?;
            parse_window(t).map_err(|e| format!("window {}: {e}", i + 1))
        })
        .collect()
}

/// `[true, true, true, true, true, false, true]` is "Mon..Fri,Sun".
fn fmt_days(days: &[bool; 7]) -> String {
    let mut runs: Vec<String> = Vec::new();
    let mut i = 0;
    while i < 7 {
        if !days[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i + 1 < 7 && days[i + 1] {
            i += 1;
        }
        let (a, b) = (DAY_NAMES[start], DAY_NAMES[i]);
        let cap = |d: &str| d[..1].to_ascii_uppercase() + &d[1..];
        runs.push(match i - start {
            0 => cap(a),
            1 => format!("{},{}", cap(a), cap(b)),
            _ => format!("{}..{}", cap(a), cap(b)),
        });
        i += 1;
    }
    runs.join(",")
}

impl Window {
    /// One line for `rebootmgr status`: "Mon..Fri *-*-01..07 02:00 for 3h
    /// (Europe/Berlin)".
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.days != [true; 7] {
            parts.push(fmt_days(&self.days));
        }
        if !self.dates.is_any() {
            parts.push(self.dates.text.clone());
        }
        parts.push(format!(
            "{:02}:{:02} for {}",
            self.start / 60,
            self.start % 60,
            umm_core::duration::format(self.duration)
        ));
        if parts.len() == 1 {
            parts.insert(0, "daily".into());
        }
        let tz = self
            .time_zone
            .as_deref()
            .unwrap_or("the system's time zone");
        format!("{} ({tz})", parts.join(" "))
    }
}

/// FNV-1a 64 of the node name: stable across builds and platforms.
pub fn node_hash(node: &str) -> u64 {
    node.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

/// Whether a reboot may start now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Inside a window at or after this node's turn, with room to finish.
    Open { ends: Timestamp },
    /// Not now; the message says why and when.
    Closed(String),
}

fn dur(d: Duration) -> SignedDuration {
    SignedDuration::from_secs(d.as_secs().min(i64::MAX as u64) as i64)
}

/// The occurrence of `w` that starts on local date `date`, if it is one of its days.
fn occurrence(w: &Window, tz: &TimeZone, date: Date) -> Option<(Timestamp, Timestamp)> {
    let wd: Weekday = date.weekday();
    if !w.days[wd.to_monday_zero_offset() as usize] || !w.dates.matches(date) {
        return None;
    }
    let local = date.at((w.start / 60) as i8, (w.start % 60) as i8, 0, 0);
    // Gap: the later valid time; fold: the earlier instant (jiff's "compatible").
    let start = local.to_zoned(tz.clone()).ok()?.timestamp();
    Some((start, start.checked_add(dur(w.duration)).ok()?))
}

/// How far ahead a window's next start is looked for, from now and from
/// each start found: 40 years, the longest gap between two occurrences of
/// a weekday and a date (a Monday on 29 February comes every 28 years, 40
/// across 2100). One that matches no date in that span never opens. The
/// scan is cheap: a day that is not one of the window's costs two lookups.
const SEARCH_DAYS: usize = 40 * 366;

/// The next `n` starts of `w` after `after` (for `check-config` and the
/// comparison with `systemd-analyze calendar`).
pub fn next_starts(w: &Window, after: Timestamp, n: usize) -> Result<Vec<Timestamp>, String> {
    let tz = zone(w.time_zone.as_deref())?;
    let mut date = after.to_zoned(tz.clone()).date();
    let mut out = Vec::new();
    // Up to SEARCH_DAYS after `after`, then after each start found.
    let mut left = SEARCH_DAYS;
    while left > 0 && out.len() < n {
        if let Some((start, _)) = occurrence(w, &tz, date) {
            if start > after {
                out.push(start);
                left = SEARCH_DAYS;
            }
        }
        left -= 1;
        date = date.tomorrow().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

fn fmt(ts: Timestamp, tz: &TimeZone) -> String {
    ts.to_zoned(tz.clone())
        .strftime("%a %Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

/// The decision for `node` at `now`, when a reboot needs `needed` (settle
/// wait + pre-boot task timeouts) before the window ends. No windows: open.
pub fn decide(windows: &[Window], node: &str, now: Timestamp, needed: Duration) -> Verdict {
    if windows.is_empty() {
        return Verdict::Open {
            ends: Timestamp::MAX,
        };
    }
    let mut reasons = Vec::new();
    let mut next: Option<(Timestamp, TimeZone)> = None;
    for w in windows {
        let tz = match zone(w.time_zone.as_deref()) {
            Ok(z) => z,
            Err(e) => {
                reasons.push(e);
                continue;
            }
        };
        let today = now.to_zoned(tz.clone()).date();
        // A window lasts at most 7 days: one that started 8 days ago is over.
        for back in (-8i64..=8).rev() {
            let Ok(date) = today.checked_add(jiff::Span::new().days(-back)) else {
                continue;
            };
            let Some((start, end)) = occurrence(w, &tz, date) else {
                continue;
            };
            if start > now {
                if next.as_ref().is_none_or(|(n, _)| start < *n) {
                    next = Some((start, tz.clone()));
                }
                continue;
            }
            if now >= end {
                continue;
            }
            let latest = end.checked_sub(dur(needed)).unwrap_or(start);
            if latest <= start {
                reasons.push(format!(
                    "the window {}–{} is too short: the settle wait and the pre-boot tasks' timeouts need {} before its end",
                    fmt(start, &tz), fmt(end, &tz), umm_core::duration::format(needed)
                ));
                continue;
            }
            let span = latest.duration_since(start).as_secs().max(0) as u64;
            let offset = node_hash(node) % (span / 2 + 1);
            let turn = start
                .checked_add(SignedDuration::from_secs(offset as i64))
                .unwrap_or(start);
            if now < turn {
                reasons.push(format!(
                    "inside the window {}–{}, but this node's turn (spread by its name) starts at {}",
                    fmt(start, &tz),
                    fmt(end, &tz),
                    fmt(turn, &tz)
                ));
            } else if now >= latest {
                reasons.push(format!(
                    "too late in the window {}–{}: the settle wait and the pre-boot tasks' timeouts ({}) would run past its end",
                    fmt(start, &tz),
                    fmt(end, &tz),
                    umm_core::duration::format(needed)
                ));
            } else {
                return Verdict::Open { ends: end };
            }
        }
    }
    if next.is_none() {
        // Windows on a few dates (monthly, yearly) open further ahead than the scan above.
        for w in windows {
            if let (Ok(tz), Ok(starts)) = (zone(w.time_zone.as_deref()), next_starts(w, now, 1)) {
                if let Some(start) = starts.first() {
                    if next.as_ref().is_none_or(|(n, _)| start < n) {
                        next = Some((*start, tz));
                    }
                }
            }
        }
    }
    if reasons.is_empty() {
        reasons.push("outside every reboot window".into());
    }
    let mut msg = reasons.join("; ");
    if let Some((n, tz)) = next {
        msg.push_str(&format!("; next window opens {}", fmt(n, &tz)));
    }
    Verdict::Closed(msg)
}

/// "Now": [`NOW_ENV`] when set (tests), else the system clock.
pub fn now() -> Result<Timestamp, Abort> {
    match std::env::var(NOW_ENV) {
        Ok(v) if !v.is_empty() => v.parse::<Timestamp>().map_err(|e| {
            Abort::new(
                Exit::Usage,
                format!("{NOW_ENV}={v:?} is not an RFC 3339 time: {e}"),
            )
        }),
        _ => Ok(Timestamp::now()),
    }
}

/// The Consul keys an operator sets to override the node's windows: the
/// group's first, then the global one (docs/rebootmgr.md, Consul KV layout).
pub fn kv_keys(keys: &Keys) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(g) = &keys.group {
        out.push(format!("{}/{g}_window", umm_coord::protocol::PREFIX));
    }
    out.push(format!("{}/window", umm_coord::protocol::PREFIX));
    out
}

/// The windows in force: the group's KV key, else the global KV key, else
/// the node's config files. A KV value that is not valid is exit 104 naming
/// the key (a typo there must not open the fleet's reboots at any time).
pub fn effective(c: &Consul, keys: &Keys, file: &[Window]) -> Result<(Vec<Window>, String), Abort> {
    for key in kv_keys(keys) {
        if let Some(e) = c.kv_get(&key)? {
            let text = e.value_str();
            let bad = |what: String| {
                Abort::new(
                    Exit::NotConfigured,
                    format!("Consul key {key}: {what} (the same [[window]] tables as in rebootmgr.toml)"),
                )
            };
            let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                bad(format!(
                    "not valid TOML: {}",
                    umm_core::config::toml_error(&text, &e)
                ))
            })?;
            if let Some(k) = table.keys().find(|k| *k != "window") {
                return Err(bad(format!(
                    "unknown key {}",
                    umm_core::config::shown_key(k)
                )));
            }
            let windows = match table.get("window") {
                Some(v) => parse_windows(v).map_err(bad)?,
                None => Vec::new(),
            };
            return Ok((windows, format!("Consul key {key}")));
        }
    }
    Ok((file.to_vec(), "rebootmgr.toml".into()))
}

/// What a reboot needs before the window ends: the settle wait plus each
/// pre-boot task's timeout.
pub fn needed(s: &crate::flow::Settings) -> Result<Duration, Abort> {
    let tasks =
        umm_core::tasks::list_dir(&s.root, std::path::Path::new(crate::local::PRE_BOOT_TASKS))
            .map_err(|e| Abort::new(Exit::TaskRefused, e.to_string()))?;
    Ok(s.settle + s.task_timeout.saturating_mul(tasks.len() as u32))
}

/// The gate in the pre-boot phase, before anything is taken in Consul:
/// outside a window (or before this node's turn, or too late) the run ends
/// with exit 12, "outside the reboot window", which the timer retries.
/// The verdict for this run's settings now: what a reboot needs before the
/// window ends (the pre-boot tasks are listed), then the clock. Shared by
/// the gate and `rebootmgr status`.
fn judge(windows: &[Window], s: &crate::flow::Settings) -> Result<Verdict, Abort> {
    let needed = needed(s)?;
    Ok(decide(windows, &s.node, now()?, needed))
}

pub fn gate(c: &Consul, s: &crate::flow::Settings, keys: &Keys) -> Result<(), Abort> {
    let (windows, from) = effective(c, keys, &s.windows)?;
    if windows.is_empty() {
        return Ok(());
    }
    match judge(&windows, s)? {
        Verdict::Open { ends } => {
            log::info!("inside a reboot window (from {from}) until {ends}");
            Ok(())
        }
        Verdict::Closed(why) => Err(Abort::new(
            Exit::OutsideWindow,
            format!("not starting a reboot: {why} (windows from {from})"),
        )),
    }
}

/// The `window` object of `rebootmgr status` (docs/rebootmgr-status-json.md):
/// the windows in force, where they come from, and whether a run now may
/// start a reboot, with the settings of the config files (a `run` with other
/// `--settle`/`--task-timeout` flags needs a different time before the end).
pub fn status(
    c: &Consul,
    s: &crate::flow::Settings,
    keys: &Keys,
) -> Result<serde_json::Value, Abort> {
    let (windows, from) = effective(c, keys, &s.windows)?;
    let list: Vec<String> = windows.iter().map(Window::describe).collect();
    let (open, until, reason) = if windows.is_empty() {
        (true, None, None)
    } else {
        match judge(&windows, s) {
            Ok(Verdict::Open { ends }) => (true, Some(ends), None),
            Ok(Verdict::Closed(why)) => (false, None, Some(why)),
            Err(e) => (false, None, Some(e.message)),
        }
    };
    Ok(serde_json::json!({
        "source": from,
        "windows": list,
        "open": open,
        "until": until.map(|t| t.as_second()),
        "until_utc": until.map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()),
        "reason": reason,
    }))
}

/// The `reboot window:` lines of `rebootmgr status`.
pub fn render_status(v: &serde_json::Value) -> String {
    let from = v["source"].as_str().unwrap_or_default();
    let list: Vec<&str> = v["windows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w.as_str())
        .collect();
    if list.is_empty() {
        return format!("reboot window:   any time (no [[window]] in {from})");
    }
    let mut out = match (
        v["open"].as_bool(),
        v["until_utc"].as_str(),
        v["reason"].as_str(),
    ) {
        (Some(true), Some(until), _) => {
            format!("reboot window:   open until {until} (windows from {from})")
        }
        (_, _, Some(why)) => format!("reboot window:   closed: {why} (windows from {from})"),
        _ => format!("reboot window:   (windows from {from})"),
    };
    for w in list {
        out += &format!("\n  window:        {w}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(days: &str, start: &str, dur: &str, tz: &str) -> Window {
        let t: toml::Table = format!(
            "days = [{}]\nstart = \"{start}\"\nduration = \"{dur}\"\ntime_zone = \"{tz}\"\n",
            days.split(',')
                .map(|d| format!("\"{d}\""))
                .collect::<Vec<_>>()
                .join(",")
        )
        .parse()
        .unwrap();
        parse_window(&t).unwrap()
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn open(v: &Verdict) -> bool {
        matches!(v, Verdict::Open { .. })
    }

    /// A node name whose spread offset is 0 for this span (its turn is the start).
    fn first_node(span: u64) -> String {
        (0..50_000_000u64)
            .map(|i| format!("n{i}"))
            .find(|n| node_hash(n).is_multiple_of(span / 2 + 1))
            .unwrap()
    }

    #[test]
    fn days_and_times_parse_and_refuse() {
        let d = parse_days(&["Mon..Wed".into(), "sunday".into()]).unwrap();
        assert_eq!(d, [true, true, true, false, false, false, true]);
        let d = parse_days(&["Sat..Mon".into()]).unwrap();
        assert_eq!(d, [true, false, false, false, false, true, true]);
        assert!(parse_days(&["Monkey".into()]).is_err());
        assert!(parse_days(&[]).is_err());
        assert_eq!(parse_time("02:30").unwrap(), 150);
        for bad in ["24:00", "2:5", "0230", "ab:cd", "12:60"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        let t: toml::Table = "start = \"02:00\"\nduration = \"1h\"\ntime_zone = \"Mars/Olympus\""
            .parse()
            .unwrap();
        let e = parse_window(&t).unwrap_err();
        assert!(
            e.contains("key 'time_zone'") && e.contains("unknown time zone"),
            "{e}"
        );
        let t: toml::Table = "start = \"02:00\"\nduration = 3600".parse().unwrap();
        assert!(parse_window(&t).unwrap_err().contains("key 'duration'"));
        let t: toml::Table = "start = \"02:00\"\nduration = \"8d\"".parse().unwrap();
        assert!(parse_window(&t).unwrap_err().contains("1min to 7d"));
        let t: toml::Table = "start = \"02:00\"\nduration = \"1h\"\nbogus = 1"
            .parse()
            .unwrap();
        assert!(parse_window(&t)
            .unwrap_err()
            .contains("unknown key 'bogus'"));
    }

    #[test]
    fn no_windows_means_any_time() {
        assert!(open(&decide(
            &[],
            "n",
            at("2026-01-01T12:00:00Z"),
            Duration::ZERO
        )));
    }

    #[test]
    fn inside_outside_and_the_weekday_in_the_windows_zone() {
        // Thursday 2026-01-01 in UTC; Mon..Fri 02:00 for 3 h in Europe/Berlin (UTC+1 in winter).
        let win = [w("Mon..Fri", "02:00", "3h", "Europe/Berlin")];
        let n = first_node(3 * 3600);
        assert!(open(&decide(
            &win,
            &n,
            at("2026-01-01T01:00:00Z"),
            Duration::ZERO
        )));
        assert!(open(&decide(
            &win,
            &n,
            at("2026-01-01T03:59:59Z"),
            Duration::ZERO
        )));
        let Verdict::Closed(why) = decide(&win, &n, at("2026-01-01T04:00:00Z"), Duration::ZERO)
        else {
            panic!()
        };
        assert!(
            why.contains("next window opens Fri 2026-01-02 02:00:00 CET"),
            "{why}"
        );
        // Saturday 03:00 Berlin: not a window day.
        assert!(!open(&decide(
            &win,
            &n,
            at("2026-01-03T02:00:00Z"),
            Duration::ZERO
        )));
    }

    #[test]
    fn window_spanning_midnight_belongs_to_its_start_day() {
        // Fri 22:00 for 4 h: open on Saturday 01:00 (the window started Friday),
        // closed on Sunday 01:00 (Saturday is not a window day).
        let win = [w("Fri", "22:00", "4h", "UTC")];
        let n = first_node(4 * 3600);
        assert!(open(&decide(
            &win,
            &n,
            at("2026-01-03T01:00:00Z"),
            Duration::ZERO
        )));
        assert!(!open(&decide(
            &win,
            &n,
            at("2026-01-04T01:00:00Z"),
            Duration::ZERO
        )));
        assert!(!open(&decide(
            &win,
            &n,
            at("2026-01-02T21:59:00Z"),
            Duration::ZERO
        )));
    }

    #[test]
    fn dst_gap_and_real_hours() {
        // 2026-03-29: Europe/Berlin jumps from 02:00 CET to 03:00 CEST.
        // A 02:30 window opens at 03:30 CEST = 01:30 UTC, and lasts 1 real hour.
        let win = [w("Sun", "02:30", "1h", "Europe/Berlin")];
        let n = first_node(3600);
        assert!(!open(&decide(
            &win,
            &n,
            at("2026-03-29T01:29:59Z"),
            Duration::ZERO
        )));
        assert!(open(&decide(
            &win,
            &n,
            at("2026-03-29T01:30:00Z"),
            Duration::ZERO
        )));
        assert!(open(&decide(
            &win,
            &n,
            at("2026-03-29T02:29:59Z"),
            Duration::ZERO
        )));
        assert!(!open(&decide(
            &win,
            &n,
            at("2026-03-29T02:30:00Z"),
            Duration::ZERO
        )));
        // A 01:00 window for 3 h on that day is 3 elapsed hours: 00:00–03:00 UTC
        // (01:00 CET to 05:00 CEST on the wall clock).
        let win = [w("Sun", "01:00", "3h", "Europe/Berlin")];
        let n = first_node(3 * 3600);
        assert!(open(&decide(
            &win,
            &n,
            at("2026-03-29T02:59:00Z"),
            Duration::ZERO
        )));
        assert!(!open(&decide(
            &win,
            &n,
            at("2026-03-29T03:00:00Z"),
            Duration::ZERO
        )));
        // Autumn (2026-10-25, 03:00 CEST back to 02:00 CET): 02:30 is ambiguous;
        // the window opens at the earlier instant, 02:30 CEST = 00:30 UTC.
        let win = [w("Sun", "02:30", "1h", "Europe/Berlin")];
        assert!(!open(&decide(
            &win,
            &n,
            at("2026-10-25T00:29:00Z"),
            Duration::ZERO
        )));
        assert!(open(&decide(
            &win,
            &first_node(3600),
            at("2026-10-25T00:30:00Z"),
            Duration::ZERO
        )));
    }

    #[test]
    fn last_minute_refusal() {
        // 02:00–04:00 UTC, a reboot needs 30 min: nothing starts after 03:30.
        let win = [w("Mon..Sun", "02:00", "2h", "UTC")];
        let needed = Duration::from_secs(1800);
        let n = first_node(5400);
        assert!(open(&decide(&win, &n, at("2026-01-01T03:29:59Z"), needed)));
        let Verdict::Closed(why) = decide(&win, &n, at("2026-01-01T03:30:00Z"), needed) else {
            panic!()
        };
        assert!(why.contains("too late") && why.contains("30min"), "{why}");
        // A window shorter than what a reboot needs never opens, and says so.
        let Verdict::Closed(why) = decide(
            &win,
            &n,
            at("2026-01-01T02:00:00Z"),
            Duration::from_secs(7200),
        ) else {
            panic!()
        };
        assert!(why.contains("too short"), "{why}");
    }

    #[test]
    fn spread_is_deterministic_and_spreads() {
        let win = [w("Mon..Sun", "02:00", "2h", "UTC")];
        let span = 7200u64;
        let mut offsets: Vec<u64> = (0..50)
            .map(|i| node_hash(&format!("node{i:02}")) % (span / 2 + 1))
            .collect();
        assert_eq!(node_hash("node07"), node_hash("node07"));
        offsets.sort();
        offsets.dedup();
        assert!(
            offsets.len() > 40,
            "50 nodes got only {} start times",
            offsets.len()
        );
        assert!(offsets.iter().all(|o| *o <= span / 2));
        // A node is refused before its turn, allowed after it.
        let n = "node07";
        let off = node_hash(n) % (span / 2 + 1);
        let start = at("2026-01-01T02:00:00Z");
        let turn = start
            .checked_add(SignedDuration::from_secs(off as i64))
            .unwrap();
        assert!(open(&decide(&win, n, turn, Duration::ZERO)));
        if off > 0 {
            let before = turn.checked_sub(SignedDuration::from_secs(1)).unwrap();
            let Verdict::Closed(why) = decide(&win, n, before, Duration::ZERO) else {
                panic!()
            };
            assert!(why.contains("this node's turn"), "{why}");
        }
    }

    #[test]
    fn calendar_expressions_parse_and_refuse() {
        let c = parse_calendar("Mon..Fri 02:00").unwrap();
        assert_eq!(
            (c.days, c.start, c.time_zone),
            ([true, true, true, true, true, false, false], 120, None)
        );
        assert!(c.dates.is_any());
        let c = parse_calendar("Sat,Sun *-*-* 22:30:00 Europe/Berlin").unwrap();
        assert_eq!(c.days, [false, false, false, false, false, true, true]);
        assert_eq!(
            (c.start, c.time_zone.as_deref()),
            (1350, Some("Europe/Berlin"))
        );
        assert!(c.dates.is_any());
        let c = parse_calendar("daily").unwrap();
        assert_eq!((c.days, c.start, c.dates.is_any()), ([true; 7], 0, true));
        let d = |y, m, day| Date::new(y, m, day).unwrap();
        let first_sunday = parse_calendar("Sun *-*-01..07 02:00").unwrap();
        assert!(
            first_sunday.dates.matches(d(2026, 3, 5)) && !first_sunday.dates.matches(d(2026, 3, 8))
        );
        let last = parse_calendar("*-*~01 03:00").unwrap().dates;
        assert!(
            last.matches(d(2028, 2, 29))
                && !last.matches(d(2028, 2, 28))
                && last.matches(d(2027, 2, 28))
        );
        let last_week = parse_calendar("*-05~07/1 03:00").unwrap().dates;
        assert!(last_week.matches(d(2026, 5, 25)) && last_week.matches(d(2026, 5, 31)));
        assert!(!last_week.matches(d(2026, 5, 24)) && !last_week.matches(d(2026, 6, 30)));
        let quarterly = parse_calendar("2027..2028-01,04,07,10-01 02:00")
            .unwrap()
            .dates;
        assert!(
            quarterly.matches(d(2027, 4, 1))
                && !quarterly.matches(d(2026, 4, 1))
                && !quarterly.matches(d(2027, 5, 1))
        );
        let every5 = parse_calendar("*-*-01..20/5 02:00").unwrap().dates;
        let hits: Vec<i8> = (1..=31)
            .filter(|day| every5.matches(d(2026, 1, *day)))
            .collect();
        assert_eq!(hits, [1, 6, 11, 16]);
        let monthly = parse_calendar("monthly").unwrap().dates;
        assert!(monthly.matches(d(2026, 7, 1)) && !monthly.matches(d(2026, 7, 2)));
        for bad in [
            "Fri..Mon 02:00",
            "Mon *:00",
            "*-*-* 02,14:00",
            "Mon 02:00:30",
            "Mon 02:00 Mars/X",
            "*-13-01 02:00",
            "*-*-32 02:00",
            "*-*-10..01 02:00",
            "*-*-*/2 02:00",
            "*/2-*-* 02:00",
            "26-01-01 02:00",
            "*-*~03..01 02:00",
            "*-*~1/2 02:00",
            "*-*-0/0 02:00",
            "hourly",
            "",
        ] {
            assert!(parse_calendar(bad).is_err(), "{bad}");
        }
        let t: toml::Table = "calendar = \"Mon 02:00\"\nstart = \"03:00\"\nduration = \"1h\""
            .parse()
            .unwrap();
        assert!(parse_window(&t).unwrap_err().contains("either calendar"));
    }

    #[test]
    fn windows_describe_themselves() {
        let cal = |expr: &str| {
            let t: toml::Table = format!("calendar = {expr:?}\nduration = \"3h\"")
                .parse()
                .unwrap();
            parse_window(&t).unwrap().describe()
        };
        assert_eq!(cal("Mon..Fri 02:00 UTC"), "Mon..Fri 02:00 for 3h (UTC)");
        assert_eq!(
            cal("Sat,Sun 22:30"),
            "Sat,Sun 22:30 for 3h (the system's time zone)"
        );
        assert_eq!(
            cal("Mon,Wed..Fri,Sun *-*-01..07 02:00 UTC"),
            "Mon,Wed..Fri,Sun *-*-01..07 02:00 for 3h (UTC)"
        );
        assert_eq!(cal("*-*~01 03:00 UTC"), "*-*~01 03:00 for 3h (UTC)");
        assert_eq!(
            w("Mon..Sun", "04:15", "1h", "Europe/Berlin").describe(),
            "daily 04:15 for 1h (Europe/Berlin)"
        );
    }

    #[test]
    fn a_monthly_window_names_its_next_opening() {
        let t: toml::Table = "calendar = \"Sun *-*-01..07 02:00 UTC\"\nduration = \"2h\""
            .parse()
            .unwrap();
        let win = [parse_window(&t).unwrap()];
        // Wed 2026-03-11: the first Sunday of April is 2026-04-05.
        let Verdict::Closed(why) = decide(&win, "n1", at("2026-03-11T12:00:00Z"), Duration::ZERO)
        else {
            panic!()
        };
        assert!(
            why.contains("next window opens Sun 2026-04-05 02:00:00 UTC"),
            "{why}"
        );
        // A date that never comes: no next opening, and `next_starts` finds none.
        let t: toml::Table = "calendar = \"*-02-30 02:00 UTC\"\nduration = \"2h\""
            .parse()
            .unwrap();
        let never = parse_window(&t).unwrap();
        assert!(next_starts(&never, at("2026-01-01T00:00:00Z"), 1)
            .unwrap()
            .is_empty());
        let Verdict::Closed(why) =
            decide(&[never], "n1", at("2026-03-11T12:00:00Z"), Duration::ZERO)
        else {
            panic!()
        };
        assert!(!why.contains("next window"), "{why}");
    }

    /// The starts rebootmgr computes for a calendar expression are the
    /// elapse times of the real `systemd-analyze calendar` (systemd is on
    /// every node this runs on), except for the one documented difference:
    /// a start time that a DST change skips.
    #[test]
    fn calendar_starts_agree_with_systemd_analyze() {
        fn systemd(expr: &str, base: &str, n: usize) -> Vec<Timestamp> {
            let out = std::process::Command::new("systemd-analyze")
                .env("TZ", "UTC")
                .args([
                    "calendar",
                    &format!("--iterations={n}"),
                    &format!("--base-time={base}"),
                    expr,
                ])
                .output()
                .expect("systemd-analyze (package systemd)");
            assert!(out.status.success(), "{expr}: {out:?}");
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .filter(|l| l.contains("Next elapse:") || l.contains("Iter. #"))
                .map(|l| {
                    // "    Next elapse: Fri 2026-01-02 02:00:00 UTC"
                    let f: Vec<&str> = l.split_whitespace().collect();
                    let (date, time) = (f[f.len() - 3], f[f.len() - 2]);
                    format!("{date}T{time}Z").parse().unwrap()
                })
                .collect()
        }
        let ours = |expr: &str, base: &str, n: usize| {
            let t: toml::Table = format!("calendar = {expr:?}\nduration = \"1h\"")
                .parse()
                .unwrap();
            let w = parse_window(&t).unwrap();
            let base: Timestamp = format!("{}Z", base.trim_end_matches(" UTC").replace(' ', "T"))
                .parse()
                .unwrap();
            next_starts(&w, base, n).unwrap()
        };
        for (expr, base) in [
            ("Mon..Fri 02:00 UTC", "2026-01-01 05:00:00 UTC"),
            ("Sat,Sun *-*-* 22:30 UTC", "2026-01-01 05:00:00 UTC"),
            ("Tue 03:15 Europe/Berlin", "2026-01-01 05:00:00 UTC"),
            (
                "Mon,Fri..Sun 23:45:00 America/New_York",
                "2026-02-27 12:00:00 UTC",
            ),
            // Autumn fold: both take the earlier 02:30 (CEST).
            ("Sun 02:30 Europe/Berlin", "2026-10-18 05:00:00 UTC"),
            ("daily", "2026-03-28 12:00:00 UTC"),
            // Dates: the first Sunday, the last day, the last Monday of May,
            // quarterly, every 5th day, a leap day, years, weekday and date.
            ("Sun *-*-01..07 02:00 UTC", "2026-01-01 05:00:00 UTC"),
            ("*-*~01 03:00 UTC", "2026-01-01 05:00:00 UTC"),
            ("Mon *-05~07/1 02:00 UTC", "2026-01-01 05:00:00 UTC"),
            ("*-01,04,07,10-01 02:00 UTC", "2026-01-01 05:00:00 UTC"),
            ("*-*-1..20/5 02:00 UTC", "2026-01-01 05:00:00 UTC"),
            ("*-*-01/10 02:00 UTC", "2026-01-25 05:00:00 UTC"),
            ("*-02-29 02:00 UTC", "2026-01-01 05:00:00 UTC"),
            ("Mon *-02-29 02:00 UTC", "2026-01-01 05:00:00 UTC"),
            ("2027..2028-*-15 02:00 UTC", "2026-01-01 05:00:00 UTC"),
            ("Sat 01-01 02:00 UTC", "2026-01-01 05:00:00 UTC"),
            ("Fri *-*-13 02:00 Europe/Berlin", "2026-01-01 05:00:00 UTC"),
        ] {
            // "daily" in the process's zone: UTC for both.
            let expr_tz = if expr == "daily" {
                "*-*-* 00:00:00 UTC"
            } else {
                expr
            };
            assert_eq!(
                ours(expr_tz, base, 5),
                systemd(expr, base, 5),
                "{expr} from {base}"
            );
        }
        // The difference: 02:30 does not exist in Berlin on 2026-03-29.
        // systemd skips that day; rebootmgr opens the window at 03:30 CEST.
        let base = "2026-03-22 05:00:00 UTC";
        let s = systemd("Sun 02:30 Europe/Berlin", base, 1);
        let o = ours("Sun 02:30 Europe/Berlin", base, 2);
        assert_eq!(s, vec![at("2026-04-05T00:30:00Z")]);
        assert_eq!(
            o,
            vec![at("2026-03-29T01:30:00Z"), at("2026-04-05T00:30:00Z")]
        );
    }

    #[test]
    fn kv_keys_group_first() {
        let k = Keys::new("n1", Some("db"));
        assert_eq!(
            kv_keys(&k),
            ["service/rebootmgr/db_window", "service/rebootmgr/window"]
        );
        assert_eq!(
            kv_keys(&Keys::new("n1", None)),
            ["service/rebootmgr/window"]
        );
    }
}
