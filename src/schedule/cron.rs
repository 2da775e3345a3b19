//! A parsed cron expression, reduced to what the planner needs.
//!
//! `croner` parses and validates the expression and decides whether a calendar day matches
//! (day-of-month OR day-of-week, Sunday as 0 or 7, `L`, `#`, `W`). Minutes, hours and months
//! are copied into bit masks once, so the planner never re-parses and can walk a day quickly.
//! What a time zone does to those local times is the planner's business, not croner's.

use chrono::{Datelike, NaiveDate};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// A validated five-field cron expression (or `@hourly`, `@daily`, `@weekly`, `@monthly`).
#[derive(Debug, Clone)]
pub struct CronSpec {
    source: String,
    cron: Cron,
    minutes: u64,
    hours: u32,
    months: u16,
    every: Option<Every>,
}

/// `every = "10s"`: every multiple of `period` since `anchor` (elapsed time; DST does not
/// touch it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Every {
    /// The interval, in milliseconds (1 s to 1 day).
    pub period_ms: i64,
    /// The instant the multiples count from, in milliseconds since the epoch (default 0).
    pub anchor_ms: i64,
}

/// Why a cron expression was rejected; the message names the field at fault where it can.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadCron(pub String);

const FIELD_NAMES: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];

impl CronSpec {
    /// Parses `expr`: exactly five fields (min hour dom mon dow), or one of the nicknames.
    pub fn parse(expr: &str) -> Result<Self, BadCron> {
        let trimmed = expr.trim();
        if let Some(nick) = trimmed.strip_prefix('@') {
            if !matches!(
                nick.to_ascii_lowercase().as_str(),
                "hourly" | "daily" | "weekly" | "monthly" | "yearly" | "annually"
            ) {
                return Err(BadCron(format!(
                    "unknown cron nickname {trimmed:?}; expected @hourly, @daily, @weekly, @monthly or @yearly"
                )));
            }
        } else {
            let fields: Vec<&str> = trimmed.split_whitespace().collect();
            if fields.len() != 5 {
                return Err(BadCron(format!(
                    "expected 5 cron fields (minute hour day-of-month month day-of-week), got {}: {trimmed:?}",
                    fields.len()
                )));
            }
            // Parse each field alone first so the error can name the one at fault.
            for (i, field) in fields.iter().enumerate() {
                let mut probe = ["0", "0", "*", "*", "*"];
                probe[i] = field;
                if let Err(e) = parser().parse(&probe.join(" ")) {
                    return Err(BadCron(format!(
                        "bad {} field {field:?} in {trimmed:?}: {}",
                        FIELD_NAMES[i],
                        plain(&e)
                    )));
                }
            }
        }
        let cron = parser()
            .parse(trimmed)
            .map_err(|e| BadCron(format!("bad cron expression {trimmed:?}: {}", plain(&e))))?;
        let p = &cron.pattern;
        let mut minutes = 0u64;
        for m in 0..60 {
            if p.minute_match(m).unwrap_or(false) {
                minutes |= 1 << m;
            }
        }
        let mut hours = 0u32;
        for h in 0..24 {
            if p.hour_match(h).unwrap_or(false) {
                hours |= 1 << h;
            }
        }
        let mut months = 0u16;
        for m in 1..=12 {
            if p.month_match(m).unwrap_or(false) {
                months |= 1 << m;
            }
        }
        if minutes == 0 || hours == 0 || months == 0 {
            return Err(BadCron(format!("{trimmed:?} never matches any time")));
        }
        Ok(Self {
            source: trimmed.to_string(),
            cron,
            minutes,
            hours,
            months,
            every: None,
        })
    }

    /// An `every` entry's timing: written as `every {text}` where cron text would be. Its day
    /// and time tests match everything; the planner counts multiples of the interval instead.
    pub fn every(text: &str, every: Every) -> Self {
        let mut spec = Self::parse("* * * * *").expect("the every-minute cron parses");
        spec.source = format!("every {text}");
        spec.every = Some(every);
        spec
    }

    /// The interval of an `every` entry; `None` for a cron entry.
    pub fn interval(&self) -> Option<Every> {
        self.every
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the hour field matches every hour (`*`, `*/1`, `0-23`, `@hourly`): such an
    /// entry follows elapsed real time across DST changes (docs/schedule.md).
    pub fn every_hour(&self) -> bool {
        self.hours == (1 << 24) - 1
    }

    /// True when the entry may run on `date` (month, day-of-month, day-of-week).
    pub fn matches_day(&self, date: NaiveDate) -> bool {
        if self.months & (1 << date.month()) == 0 {
            return false;
        }
        let weekday = croner::Weekday::from_days_from_sunday(date.weekday().num_days_from_sunday());
        self.cron
            .pattern
            .day_match(date.year(), date.month(), date.day(), weekday)
            .unwrap_or(false)
    }

    /// The matching hours, ascending.
    pub fn hours(&self) -> impl Iterator<Item = u32> + '_ {
        (0..24).filter(|h| self.hours & (1 << h) != 0)
    }

    /// The matching minutes, ascending.
    pub fn minutes(&self) -> impl Iterator<Item = u32> + '_ {
        (0..60).filter(|m| self.minutes & (1 << m) != 0)
    }

    /// Whether `hour:minute` matches the time fields.
    pub fn matches_time(&self, hour: u32, minute: u32) -> bool {
        self.hours & (1 << hour) != 0 && self.minutes & (1 << minute) != 0
    }
}

fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
}

fn plain(e: &croner::errors::CronError) -> String {
    let text = e.to_string();
    let text = text
        .trim_start_matches("Component error: ")
        .trim_start_matches("Invalid pattern: ");
    text.trim_end_matches('.').to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn day_of_month_or_day_of_week_either_suffices() {
        // 13th of the month, or any Friday.
        let c = CronSpec::parse("0 0 13 * 5").unwrap();
        assert!(c.matches_day(day("2026-11-13"))); // a Friday the 13th
        assert!(c.matches_day(day("2026-12-13"))); // a Sunday, but the 13th
        assert!(c.matches_day(day("2026-11-20"))); // a Friday
        assert!(!c.matches_day(day("2026-11-19"))); // neither
    }

    #[test]
    fn sunday_is_zero_and_seven() {
        let zero = CronSpec::parse("0 0 * * 0").unwrap();
        let seven = CronSpec::parse("0 0 * * 7").unwrap();
        for d in ["2026-11-29", "2026-12-06"] {
            assert!(zero.matches_day(day(d)) && seven.matches_day(day(d)));
        }
        assert!(!seven.matches_day(day("2026-11-30")));
    }

    #[test]
    fn february_29_only_in_leap_years() {
        let c = CronSpec::parse("0 12 29 2 *").unwrap();
        assert!(c.matches_day(day("2028-02-29")));
        assert!(!c.matches_day(day("2027-02-28")));
    }

    #[test]
    fn hour_wildcard_is_detected_by_meaning() {
        assert!(CronSpec::parse("*/15 * * * *").unwrap().every_hour());
        assert!(CronSpec::parse("@hourly").unwrap().every_hour());
        assert!(CronSpec::parse("0 0-23 * * *").unwrap().every_hour());
        assert!(!CronSpec::parse("30 2 * * *").unwrap().every_hour());
        assert!(!CronSpec::parse("@daily").unwrap().every_hour());
    }

    #[test]
    fn errors_name_the_field() {
        let e = CronSpec::parse("61 * * * *").unwrap_err().0;
        assert!(e.starts_with("bad minute field \"61\""), "{e}");
        let e = CronSpec::parse("0 25 * * *").unwrap_err().0;
        assert!(e.starts_with("bad hour field \"25\""), "{e}");
        let e = CronSpec::parse("* * * *").unwrap_err().0;
        assert!(e.starts_with("expected 5 cron fields"), "{e}");
        assert!(CronSpec::parse("0 0 * * * *").is_err());
        assert!(CronSpec::parse("@reboot").is_err());
    }
}
