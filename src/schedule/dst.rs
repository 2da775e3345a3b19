//! What DST changes do to a schedule: for each entry, the dates on which a clock change moves,
//! merges, repeats or removes one of its runs, so nobody learns it in production.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use super::{DstRepeated, DstSkipped, Entry, Schedule, occurrences};

/// One clock change that affects one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DstImpact {
    /// The entry.
    pub entry: String,
    /// Its zone.
    pub timezone: Tz,
    /// The local date of the change.
    pub date: NaiveDate,
    /// What happens to the entry's runs that day.
    pub detail: String,
}

/// A change of UTC offset in one zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The first instant with the new offset.
    pub at: DateTime<Utc>,
    /// Offset before, in seconds.
    pub before: i32,
    /// Offset after, in seconds.
    pub after: i32,
}

fn offset_at(tz: Tz, t: DateTime<Utc>) -> i32 {
    tz.offset_from_utc_datetime(&t.naive_utc())
        .fix()
        .local_minus_utc()
}

/// The offset changes of `tz` in `[from, to)`.
pub fn transitions(tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Transition> {
    let step = TimeDelta::hours(1);
    let mut out = Vec::new();
    let mut t = from;
    let mut offset = offset_at(tz, t);
    while t < to {
        let next = t + step;
        let next_offset = offset_at(tz, next);
        if next_offset != offset {
            // Narrow down to the second.
            let (mut lo, mut hi) = (t.timestamp(), next.timestamp());
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                let m = DateTime::<Utc>::from_timestamp(mid, 0).expect("in range");
                if offset_at(tz, m) == offset {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let at = DateTime::<Utc>::from_timestamp(hi, 0).expect("in range");
            if at >= from && at < to {
                out.push(Transition {
                    at,
                    before: offset,
                    after: next_offset,
                });
            }
            offset = next_offset;
        }
        t = next;
    }
    out
}

/// Every DST impact on the enabled entries of `schedule` in `[from, to)`, by date.
pub fn report(schedule: &Schedule, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DstImpact> {
    let mut out = Vec::new();
    let mut zones: Vec<(Tz, Vec<Transition>)> = Vec::new();
    for entry in schedule.enabled() {
        let known = zones.iter().position(|(tz, _)| *tz == entry.timezone);
        let idx = known.unwrap_or_else(|| {
            zones.push((entry.timezone, transitions(entry.timezone, from, to)));
            zones.len() - 1
        });
        for tr in &zones[idx].1 {
            if let Some(impact) = impact(entry, tr) {
                out.push(impact);
            }
        }
    }
    out.sort_by(|a, b| a.date.cmp(&b.date).then_with(|| a.entry.cmp(&b.entry)));
    out
}

fn hhmm(t: NaiveDateTime) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

fn offset_text(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let abs = seconds.unsigned_abs();
    format!("{sign}{:02}:{:02}", abs / 3600, abs % 3600 / 60)
}

/// What `tr` does to `entry`, if anything.
pub fn impact(entry: &Entry, tr: &Transition) -> Option<DstImpact> {
    // An `every` entry counts elapsed time: a clock change moves none of its runs.
    if entry.cron.interval().is_some() {
        return None;
    }
    let (low, high) = if tr.after > tr.before {
        (tr.before, tr.after)
    } else {
        (tr.after, tr.before)
    };
    // The local times that are skipped (spring forward) or repeated (fall back).
    let start = tr.at.naive_utc() + TimeDelta::seconds(i64::from(low));
    let end = tr.at.naive_utc() + TimeDelta::seconds(i64::from(high));
    let mut affected = Vec::new();
    let mut t = start;
    while t < end {
        if t.second() == 0
            && entry.cron.matches_time(t.hour(), t.minute())
            && entry.cron.matches_day(t.date())
        {
            affected.push(t);
        }
        t += TimeDelta::minutes(1);
    }
    if affected.is_empty() {
        return None;
    }
    let times = {
        let mut shown: Vec<String> = affected.iter().take(4).map(|t| hhmm(*t)).collect();
        if affected.len() > 4 {
            shown.push(format!("… ({} times)", affected.len()));
        }
        shown.join(", ")
    };
    let spring = tr.after > tr.before;
    let every_hour = entry.cron.every_hour();
    let detail = if spring {
        if every_hour {
            format!(
                "{} to {} does not exist (clocks jump forward): no run at {times}, {} fewer that day",
                hhmm(start),
                hhmm(end),
                affected.len()
            )
        } else if entry.dst_skipped == DstSkipped::Shift {
            let due = occurrences(
                entry,
                tr.at - TimeDelta::seconds(1),
                tr.at + TimeDelta::hours(3),
            )
            .next()
            .map(|o| crate::rfc3339::local(o.due, o.offset_seconds))
            .unwrap_or_default();
            format!("{times} does not exist (clocks jump forward): runs once at {due} instead")
        } else {
            format!(
                "{times} does not exist (clocks jump forward): no run that day (dst_skipped = \"skip\")"
            )
        }
    } else if every_hour {
        format!(
            "{} to {} happens twice (clocks fall back): runs at {times} twice, {} more that day",
            hhmm(start),
            hhmm(end),
            affected.len()
        )
    } else {
        match entry.dst_repeated {
            DstRepeated::First => format!(
                "{times} happens twice (clocks fall back): runs once, at the first ({})",
                offset_text(tr.before)
            ),
            DstRepeated::Last => format!(
                "{times} happens twice (clocks fall back): runs once, at the second ({})",
                offset_text(tr.after)
            ),
            DstRepeated::Both => format!(
                "{times} happens twice (clocks fall back): runs twice ({} and {})",
                offset_text(tr.before),
                offset_text(tr.after)
            ),
        }
    };
    Some(DstImpact {
        entry: entry.name.clone(),
        timezone: entry.timezone,
        date: affected[0].date(),
        detail,
    })
}
