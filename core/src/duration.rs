//! Durations in config files always carry a unit. The original spec said
//! `COUNTER_RESET_TIME` was in seconds while the implementation used minutes,
//! so a bare number is refused rather than guessed.

use std::time::Duration;

pub const BARE_NUMBER_HINT: &str =
    "a bare number is ambiguous (the old spec meant seconds, the old tool minutes): write it with a unit, e.g. \"600s\" or \"10min\"";

/// Parses `"600s"`, `"10min"`, `"1h 30min"`, `"2d"`. Units: s/sec/second(s),
/// m/min/minute(s), h/hr/hour(s), d/day(s), w/week(s).
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if t.chars().all(|c| c.is_ascii_digit()) {
        return Err(BARE_NUMBER_HINT.into());
    }
    let mut total: u64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(format!(
                "cannot read duration {text:?}: expected a number at {rest:?}"
            ));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("number too large in {text:?}"))?;
        rest = rest[digits..].trim_start();
        let unit_len = rest.chars().take_while(|c| c.is_ascii_alphabetic()).count();
        let unit = &rest[..unit_len];
        let mult = match unit {
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hr" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86400,
            "w" | "week" | "weeks" => 7 * 86400,
            "" => return Err(format!("cannot read duration {text:?}: {BARE_NUMBER_HINT}")),
            other => {
                return Err(format!(
                    "unknown unit {other:?} in duration {text:?} (use s, min, h, d)"
                ))
            }
        };
        total = n
            .checked_mul(mult)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration {text:?} is too large"))?;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_secs(total))
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
    fn formats_round_trip() {
        for t in ["10min", "45s", "2h", "90s"] {
            assert_eq!(format(parse(t).unwrap()), t);
        }
    }
}
