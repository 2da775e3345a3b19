//! Catch-up after downtime (docs/schedule.md), as a pure decision: given the occurrences an entry
//! missed while no scheduler ran, which to run now and which to record as `missed`.
//! Every missed occurrence lands in exactly one of the two lists: none is silently lost.

use chrono::{DateTime, TimeDelta, Utc};

use super::{CatchUp, Entry};

/// The decision for one entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Occurrences to run now, oldest first.
    pub run: Vec<DateTime<Utc>>,
    /// Occurrences to record as `missed`, oldest first.
    pub missed: Vec<DateTime<Utc>>,
}

/// Splits `missed` (ascending) for `entry` at `now`: only occurrences inside
/// `catch_up_window` may run; `skip` runs none, `latest` the newest, `all` each in order up to
/// `catch_up_max` (the oldest dropped first).
pub fn plan(entry: &Entry, missed: &[DateTime<Utc>], now: DateTime<Utc>) -> Plan {
    let window = TimeDelta::from_std(entry.catch_up_window).unwrap_or(TimeDelta::MAX);
    let window_start = now
        .checked_sub_signed(window)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let split = missed.partition_point(|due| *due < window_start);
    let (outside, inside) = missed.split_at(split);
    let keep = match entry.catch_up {
        CatchUp::Skip => 0,
        CatchUp::Latest => inside.len().min(1),
        CatchUp::All => inside.len().min(entry.catch_up_max as usize),
    };
    let (dropped, run) = inside.split_at(inside.len() - keep);
    Plan {
        run: run.to_vec(),
        missed: outside.iter().chain(dropped).copied().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::file;

    fn entry(extra: &str) -> Entry {
        let text = format!(
            "[[task]]\nname = \"e\"\ntask = \"diagnostics:noop\"\ncron = \"0 * * * *\"\n{extra}\n"
        );
        file::parse("t.toml".as_ref(), &text, chrono_tz::Tz::UTC)
            .unwrap()
            .entries
            .remove(0)
    }

    fn hours(range: std::ops::Range<i64>) -> Vec<DateTime<Utc>> {
        let base: DateTime<Utc> = "2026-11-27T00:00:00Z".parse().unwrap();
        range.map(|h| base + TimeDelta::hours(h)).collect()
    }

    // Down from 00:30 to 05:30: the hourly runs at 01:00-05:00 were missed.
    const NOW: &str = "2026-11-27T05:30:00Z";

    #[test]
    fn each_policy_splits_the_missed_runs() {
        let now: DateTime<Utc> = NOW.parse().unwrap();
        let missed = hours(1..6);
        let skip = plan(
            &entry("catch_up = \"skip\"\ncatch_up_window = \"3h\""),
            &missed,
            now,
        );
        assert_eq!(
            skip,
            Plan {
                run: vec![],
                missed: hours(1..6)
            }
        );
        let latest = plan(
            &entry("catch_up = \"latest\"\ncatch_up_window = \"3h\""),
            &missed,
            now,
        );
        assert_eq!(
            latest,
            Plan {
                run: hours(5..6),
                missed: hours(1..5)
            }
        );
        // Inside 3h: 03:00, 04:00, 05:00 (02:30 is the window's start).
        let all = plan(
            &entry("catch_up = \"all\"\ncatch_up_window = \"3h\""),
            &missed,
            now,
        );
        assert_eq!(
            all,
            Plan {
                run: hours(3..6),
                missed: hours(1..3)
            }
        );
        let capped = plan(
            &entry("catch_up = \"all\"\ncatch_up_window = \"1d\"\ncatch_up_max = 2"),
            &missed,
            now,
        );
        assert_eq!(
            capped,
            Plan {
                run: hours(4..6),
                missed: hours(1..4)
            }
        );
        let narrow = plan(
            &entry("catch_up = \"latest\"\ncatch_up_window = \"10m\""),
            &missed,
            now,
        );
        assert_eq!(
            narrow,
            Plan {
                run: vec![],
                missed: hours(1..6)
            }
        );
    }
}
