//! Durations in config files always carry a unit. The original spec said
//! `COUNTER_RESET_TIME` was in seconds while the implementation used minutes,
//! so a bare number is refused rather than guessed.

use std::time::Duration;

pub const BARE_NUMBER_HINT: &str =
    "a bare number is ambiguous (the old spec meant seconds, the old tool minutes): write it with a unit, e.g. \"600s\" or \"10min\"";

/// The longest duration accepted anywhere (config, command line): 3650 days.
/// Longer ones are refused when parsed, so no deadline computed from one can
/// overflow (`Instant + Duration` panics on overflow).
pub const MAX: Duration = Duration::from_secs(MAX_SECS);
pub const MAX_SECS: u64 = 3650 * 86400;

/// Parses `"600s"`, `"10min"`, `"1h 30min"`, `"2d"`. Units: s/sec/second(s),
/// m/min/minute(s), h/hr/hour(s), d/day(s), w/week(s). At most [`MAX`].
/// Error messages say where and what, never repeat the text (it may come
/// from a file that must not be echoed).
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if t.chars().all(|c| c.is_ascii_digit()) {
        return Err(BARE_NUMBER_HINT.into());
    }
    let too_long = || format!("longer than {}d, the longest accepted", MAX_SECS / 86400);
    let mut total: u64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let at = t.len() - rest.len() + 1;
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(format!(
                "cannot read the duration: expected a number at character {at}"
            ));
        }
        // More digits than any accepted duration has: too long, not a typo.
        let n: u64 = rest[..digits].parse().map_err(|_| too_long())?;
        rest = rest[digits..].trim_start();
        let unit_len = rest.chars().take_while(|c| c.is_ascii_alphabetic()).count();
        let unit = &rest[..unit_len];
        let mult = match unit {
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hr" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86400,
            "w" | "week" | "weeks" => 7 * 86400,
            "" => return Err(format!("cannot read the duration: {BARE_NUMBER_HINT}")),
            _ => {
                return Err(format!(
                    "unknown unit at character {} of the duration (use s, min, h, d, w)",
                    t.len() - rest.len() + 1
                ))
            }
        };
        total = n
            .checked_mul(mult)
            .and_then(|v| total.checked_add(v))
            .filter(|&v| v <= MAX_SECS)
            .ok_or_else(too_long)?;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_secs(total))
}

/// Seconds given on a command line, bounded like [`parse`].
pub fn from_secs_checked(secs: u64) -> Result<Duration, String> {
    if secs > MAX_SECS {
        return Err(format!(
            "{secs} seconds is longer than {MAX_SECS} ({}d), the longest accepted",
            MAX_SECS / 86400
        ));
    }
    Ok(Duration::from_secs(secs))
}

/// `start + d` for deadlines, saturating instead of panicking (durations
/// are bounded by [`MAX`], but a deadline must never be a panic).
pub fn deadline(start: std::time::Instant, d: Duration) -> std::time::Instant {
    start
        .checked_add(d)
        .or_else(|| start.checked_add(MAX))
        .unwrap_or(start)
}

/// Formats as systemd would accept it back (`600s` → `10min`).
pub fn format(d: Duration) -> String {
    let s = d.as_secs();
    if s != 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s != 0 && s.is_multiple_of(60) {
        format!("{}min", s / 60)
    } else {
        format!("{s}s")
    }
}

/// Year, month, day, hour, minute, second (UTC) of a Unix time, without a
/// time-zone database (Howard Hinnant's civil_from_days).
pub fn utc_parts(unix: u64) -> [i64; 6] {
    let days = (unix / 86400) as i64;
    let secs = (unix % 86400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    [y, m, d, secs / 3600, secs / 60 % 60, secs % 60]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        for (t, secs) in [
            ("600s", 600),
            ("10min", 600),
            ("10 min", 600),
            ("1h 30min", 5400),
            ("1h30m", 5400),
            ("2d", 172800),
            ("1w", 604800),
            ("0s", 0),
            ("45sec", 45),
        ] {
            assert_eq!(parse(t).unwrap(), Duration::from_secs(secs), "{t}");
        }
    }

    #[test]
    fn refuses_bare_numbers_and_junk() {
        let e = parse("10").unwrap_err();
        assert!(e.contains("bare number") && e.contains("10min"), "{e}");
        assert!(parse("10 20s").unwrap_err().contains("bare number"));
        assert!(parse("10parsecs").unwrap_err().contains("unknown unit"));
        assert!(parse("").is_err());
        assert!(parse("min").is_err());
        assert!(parse("99999999999999999999s").is_err());
    }

    #[test]
    fn huge_durations_are_refused_not_wrapped() {
        // Issue 10 finding 10: "20000000000000w" made the caller's deadline
        // arithmetic panic. It is refused here, with the limit named.
        for t in [
            "20000000000000w",
            "3651d",
            "18446744073709551615s",
            "3650d 1s",
        ] {
            let e = parse(t).unwrap_err();
            assert!(e.contains("longer than 3650d"), "{t}: {e}");
        }
        assert_eq!(parse("3650d").unwrap(), MAX);
        assert!(from_secs_checked(u64::MAX)
            .unwrap_err()
            .contains("longest accepted"));
        assert_eq!(from_secs_checked(130).unwrap(), Duration::from_secs(130));
        let now = std::time::Instant::now();
        assert!(deadline(now, Duration::MAX) >= now);
    }

    #[test]
    fn errors_do_not_repeat_the_text() {
        for t in ["s3cr3t", "10 hunter2", "5 min x"] {
            let e = parse(t).unwrap_err();
            assert!(!e.contains("s3cr3t") && !e.contains("hunter2"), "{e}");
            assert!(e.contains("character"), "{t}: {e}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for t in ["10min", "45s", "2h", "90s"] {
            assert_eq!(format(parse(t).unwrap()), t);
        }
    }
}
