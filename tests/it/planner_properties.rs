//! Properties of the planner over random entries, zones and ranges, checked against a
//! brute-force walk of every real minute.

use chrono::{DateTime, Datelike, LocalResult, Offset, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use conecta::schedule::{Entry, file, occurrences};
use proptest::prelude::*;

const ZONES: &[&str] = &[
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "America/Tegucigalpa",
    "UTC",
];

fn entry(cron: &str, tz: &str, skipped: &str, repeated: &str) -> Entry {
    let text = format!(
        "[[task]]\nname = \"p\"\ntask = \"diagnostics:noop\"\ncron = \"{cron}\"\ntimezone = \"{tz}\"\ndst_skipped = \"{skipped}\"\ndst_repeated = \"{repeated}\"\n"
    );
    file::parse("p.toml".as_ref(), &text, Tz::UTC)
        .unwrap_or_else(|e| panic!("{e}"))
        .entries
        .remove(0)
}

fn cron_strategy() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["*", "*/15", "0", "30", "0,30", "5-20/5", "45", "*/7"]),
        prop::sample::select(vec!["*", "*/2", "0", "1", "2", "3", "1-3", "23", "0-23"]),
        prop::sample::select(vec!["*", "1", "15", "1-7", "29"]),
        prop::sample::select(vec!["*", "3", "10,11", "*/2", "4"]),
        prop::sample::select(vec!["*", "0", "1-5", "6,7"]),
    )
        .prop_map(|(mi, h, dom, mon, dow)| format!("{mi} {h} {dom} {mon} {dow}"))
}

fn reads_as_match(e: &Entry, t: DateTime<Utc>) -> bool {
    let local = t.with_timezone(&e.timezone);
    e.cron.matches_time(local.hour(), local.minute()) && e.cron.matches_day(local.date_naive())
}

fn offset_changes_at(tz: Tz, t: DateTime<Utc>) -> bool {
    let off = |t: DateTime<Utc>| tz.offset_from_utc_datetime(&t.naive_utc()).fix();
    off(t - TimeDelta::seconds(1)) != off(t)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn occurrences_are_ordered_matching_and_complete(
        cron in cron_strategy(),
        zone in prop::sample::select(ZONES.to_vec()),
        skipped in prop::sample::select(vec!["shift", "skip"]),
        repeated in prop::sample::select(vec!["first", "last", "both"]),
        start_day in 0i64..800,
        start_minute in 0i64..1440,
        span_hours in 1i64..(24 * 6),
    ) {
        let e = entry(&cron, zone, skipped, repeated);
        let from = "2026-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
            + TimeDelta::days(start_day) + TimeDelta::minutes(start_minute);
        let to = from + TimeDelta::hours(span_hours);
        let got: Vec<DateTime<Utc>> = occurrences(&e, from, to).map(|o| o.due).collect();

        // Strictly increasing, inside [from, to).
        prop_assert!(got.windows(2).all(|w| w[0] < w[1]), "not increasing: {got:?}");
        prop_assert!(got.iter().all(|t| *t >= from && *t < to));

        // Each one reads as a match in local time, or is a spec'd shift out of a gap.
        for t in &got {
            let shifted = !e.cron.every_hour() && skipped == "shift" && offset_changes_at(e.timezone, *t);
            prop_assert!(reads_as_match(&e, *t) || shifted, "{t} neither matches nor is a shift");
        }

        // Brute force over every real minute in the range.
        let mut t = from.with_second(0).unwrap().with_nanosecond(0).unwrap();
        if t < from { t += TimeDelta::minutes(1); }
        while t < to {
            if reads_as_match(&e, t) {
                let local = t.with_timezone(&e.timezone).naive_local();
                let repeated_time = matches!(e.timezone.from_local_datetime(&local), LocalResult::Ambiguous(..));
                if e.cron.every_hour() || !repeated_time || repeated == "both" {
                    // Elapsed-time entries fire at every matching real instant; fixed-hour ones
                    // at every local time that happens once (or at both readings with "both").
                    prop_assert!(got.contains(&t), "missing {t} ({local})");
                }
            }
            t += TimeDelta::minutes(1);
        }
        if e.cron.every_hour() {
            let brute = {
                let mut n = 0;
                let mut t = from.with_second(0).unwrap().with_nanosecond(0).unwrap();
                if t < from { t += TimeDelta::minutes(1); }
                while t < to { if reads_as_match(&e, t) { n += 1; } t += TimeDelta::minutes(1); }
                n
            };
            prop_assert_eq!(got.len(), brute, "every-hour entry must equal the brute force");
        }
    }

    #[test]
    fn fixed_hour_runs_once_per_local_day_whatever_the_zone(
        minute in 0u32..60,
        hour in 0u32..24,
        zone in prop::sample::select(ZONES.to_vec()),
        year in 2026i32..2030,
    ) {
        let e = entry(&format!("{minute} {hour} * * *"), zone, "shift", "first");
        let tz = e.timezone;
        let start = tz.with_ymd_and_hms(year, 1, 1, 0, 0, 0).earliest().unwrap().with_timezone(&Utc);
        let end = tz.with_ymd_and_hms(year + 1, 1, 1, 0, 0, 0).earliest().unwrap().with_timezone(&Utc);
        let mut per_day = std::collections::BTreeMap::new();
        for o in occurrences(&e, start, end) {
            *per_day.entry(o.due.with_timezone(&tz).date_naive()).or_insert(0u32) += 1;
        }
        let days = if chrono::NaiveDate::from_ymd_opt(year, 2, 29).is_some() { 366 } else { 365 };
        prop_assert_eq!(per_day.len(), days);
        prop_assert!(per_day.values().all(|n| *n == 1));
        prop_assert!(per_day.keys().all(|d| d.year() == year));
    }
}

/// The intervals `every` accepts below a day: the divisors of 86,400 seconds (a sample).
const EVERY: &[u64] = &[
    1, 2, 5, 10, 15, 30, 45, 60, 90, 300, 900, 3600, 7200, 21600, 43200, 86400,
];

fn every_entry(secs: u64, anchor: Option<i64>, tz: &str) -> Entry {
    let anchor = anchor
        .map(|a| {
            format!(
                "anchor = \"{}\"\n",
                DateTime::from_timestamp(a, 0).unwrap().to_rfc3339()
            )
        })
        .unwrap_or_default();
    let text = format!(
        "[[task]]\nname = \"e\"\ntask = \"diagnostics:noop\"\nevery = \"{secs}s\"\ntimezone = \"{tz}\"\n{anchor}"
    );
    file::parse("e.toml".as_ref(), &text, Tz::UTC)
        .unwrap_or_else(|e| panic!("{e}"))
        .entries
        .remove(0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// `every` runs at exactly the multiples of its interval since its anchor (the epoch by
    /// default) inside [from, to), whatever the zone and its clock changes: checked against a
    /// walk of every real second.
    #[test]
    fn every_runs_at_each_multiple_since_its_anchor(
        secs in prop::sample::select(EVERY.to_vec()),
        anchor in prop::option::of(1_700_000_000i64..1_800_000_000),
        tz in prop::sample::select(ZONES.to_vec()),
        // Around the 2026 spring-forward and fall-back changes of several zones.
        start in prop::sample::select(vec![1_772_900_000i64, 1_774_700_000, 1_790_000_000, 1_792_300_000]),
        offset in 0i64..86_400,
        span in 1i64..20_000,
        // A process's clock is rarely on a whole second: a multiple a microsecond before
        // `from` is outside the window.
        nanos in prop::sample::select(vec![0u32, 1_000, 300_000, 999_999, 1_000_000, 500_000_000]),
    ) {
        let e = every_entry(secs, anchor, tz);
        let from = DateTime::from_timestamp(start + offset, nanos).unwrap();
        let to = from + TimeDelta::seconds(span);
        let got: Vec<DateTime<Utc>> = occurrences(&e, from, to).map(|o| o.due).collect();
        let base = anchor.unwrap_or(0);
        let expected: Vec<DateTime<Utc>> = (from.timestamp()..=to.timestamp())
            .filter(|t| (t - base).rem_euclid(secs as i64) == 0)
            .map(|t| DateTime::from_timestamp(t, 0).unwrap())
            .filter(|t| *t >= from && *t < to)
            .collect();
        prop_assert_eq!(got, expected);
    }
}
