//! Human durations as the schedule file and the command line write them: `30s`, `15m`, `1h`,
//! `2d`, and sums of those such as `1h30m`. A bare integer means seconds.

use std::fmt;
use std::time::Duration;

/// The longest duration anything accepts (jitter, delays, timeouts, windows): a year. Longer
/// ones are mistakes, and would overflow the instants computed from them.
pub const MAX: Duration = Duration::from_secs(365 * 86_400);

/// Why a duration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadDuration {
    /// Not a duration at all.
    #[error("expected a duration like \"30s\", \"15m\", \"1h\" or \"2d\", got: {0:?}")]
    Syntax(String),
    /// Longer than [`MAX`].
    #[error("{0:?} is longer than a year: durations go up to 365d")]
    TooLong(String),
}

/// `d` if it is at most [`MAX`], else why not; `what` names it in the message.
pub fn bounded(d: Duration, what: &str) -> Result<Duration, BadDuration> {
    if d > MAX {
        Err(BadDuration::TooLong(what.to_string()))
    } else {
        Ok(d)
    }
}

/// Parses `30s`, `15m`, `1h`, `2d`, `1h30m` or a bare number of seconds.
/// Longer than a year is refused ([`MAX`]).
pub fn parse(text: &str) -> Result<Duration, BadDuration> {
    bounded(parse_unbounded(text)?, text)
}

fn parse_unbounded(text: &str) -> Result<Duration, BadDuration> {
    let bad = || BadDuration::Syntax(text.to_string());
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(bad());
    }
    if let Ok(seconds) = trimmed.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for ch in trimmed.chars() {
        if ch.is_ascii_digit() {
            digits.push(ch);
            continue;
        }
        let unit = match ch {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// Writes a duration back in the shortest form `parse` accepts (`90s` → `1m30s`).
pub struct Human(pub Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut left = self.0.as_secs();
        if left == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
            if left >= size {
                write!(f, "{}{unit}", left / size)?;
                left %= size;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_unit_and_sums() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("45"), Ok(Duration::from_secs(45)));
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for text in ["", "m", "10x", "1.5h", "10m5", "-3s", "ten minutes"] {
            assert!(parse(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn refuses_more_than_a_year() {
        assert_eq!(parse("365d"), Ok(MAX));
        for text in ["366d", "100000000d", "99999999999d", "53w"] {
            let e = parse(text).unwrap_err();
            assert!(e.to_string().contains("longer than a year"), "{text}: {e}");
        }
        // Overflowing u64 is still "not a duration", never a panic.
        assert!(parse("99999999999999999999999d").is_err());
    }

    #[test]
    fn prints_the_shortest_form() {
        assert_eq!(Human(Duration::from_secs(5400)).to_string(), "1h30m");
        assert_eq!(Human(Duration::from_secs(86_400)).to_string(), "1d");
    }
}
