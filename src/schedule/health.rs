//! The dead-man's switch (docs/schedule.md): an entry whose last success is older than two of its
//! periods is overdue. Pure: the caller passes the recorded instants and "now".

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::{Entry, occurrences};

/// The state of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Succeeded within two periods.
    Ok,
    /// No success within two periods.
    Overdue,
    /// Never recorded, or recorded too recently to judge.
    Pending,
}

/// The gap between the two most recent occurrences at or before `now`: the entry's period
/// as it stands (it varies for `0 9 * * 1-5` and across DST).
pub fn period(entry: &Entry, now: DateTime<Utc>) -> Option<TimeDelta> {
    let at_or_before = now + TimeDelta::milliseconds(1);
    for window in [
        TimeDelta::hours(3),
        TimeDelta::days(3),
        TimeDelta::days(64),
        TimeDelta::days(800),
    ] {
        let recent: Vec<DateTime<Utc>> = occurrences(entry, now - window, at_or_before)
            .map(|o| o.due)
            .collect();
        if let [.., a, b] = recent.as_slice() {
            return Some(*b - *a);
        }
    }
    None
}

/// Judges one entry from its last success and its earliest recorded occurrence.
pub fn judge(
    entry: &Entry,
    last_success: Option<DateTime<Utc>>,
    first_recorded: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> State {
    let Some(period) = period(entry, now) else {
        return State::Pending;
    };
    let limit = now - period * 2;
    match (last_success, first_recorded) {
        (Some(t), _) if t >= limit => State::Ok,
        (Some(_), _) => State::Overdue,
        // Never succeeded: overdue once it has been scheduled for longer than two periods.
        (None, Some(first)) if first < limit => State::Overdue,
        _ => State::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::file;

    fn entry(cron: &str) -> Entry {
        let text =
            format!("[[task]]\nname = \"e\"\ntask = \"diagnostics:noop\"\ncron = \"{cron}\"\n");
        file::parse("t.toml".as_ref(), &text, chrono_tz::Tz::UTC)
            .unwrap()
            .entries
            .remove(0)
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn periods_follow_the_cron() {
        let now = at("2026-11-27T10:07:00Z");
        assert_eq!(
            period(&entry("*/15 * * * *"), now),
            Some(TimeDelta::minutes(15))
        );
        assert_eq!(period(&entry("30 0 * * *"), now), Some(TimeDelta::days(1)));
        assert_eq!(period(&entry("0 0 1 * *"), now), Some(TimeDelta::days(31)));
    }

    #[test]
    fn overdue_after_two_periods_without_success() {
        let e = entry("*/15 * * * *");
        let now = at("2026-11-27T10:07:00Z");
        assert_eq!(
            judge(&e, Some(at("2026-11-27T09:45:00Z")), None, now),
            State::Ok
        );
        assert_eq!(
            judge(&e, Some(at("2026-11-27T09:37:00Z")), None, now),
            State::Ok
        );
        assert_eq!(
            judge(&e, Some(at("2026-11-27T09:30:00Z")), None, now),
            State::Overdue
        );
        assert_eq!(
            judge(&e, None, Some(at("2026-11-27T09:00:00Z")), now),
            State::Overdue
        );
        assert_eq!(
            judge(&e, None, Some(at("2026-11-27T10:00:00Z")), now),
            State::Pending
        );
        assert_eq!(judge(&e, None, None, now), State::Pending);
    }
}
