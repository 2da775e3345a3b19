//! docs/schedule.md, table by table. Every expected instant below was worked out by hand from the
//! spec and the zones' published rules, not produced by the code under test.

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use conecta::schedule::{Entry, file, occurrences};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// An entry parsed from a one-entry schedule file, so the tests go through the validator too.
fn entry(cron: &str, tz: &str, extra: &str) -> Entry {
    let text = format!(
        "[[task]]\nname = \"t\"\ntask = \"diagnostics:noop\"\ncron = \"{cron}\"\ntimezone = \"{tz}\"\n{extra}\n"
    );
    let schedule =
        file::parse("test.toml".as_ref(), &text, Tz::UTC).unwrap_or_else(|e| panic!("{e}"));
    schedule.entries.into_iter().next().unwrap()
}

fn dues(e: &Entry, from: &str, to: &str) -> Vec<String> {
    occurrences(e, at(from), at(to))
        .map(|o| o.due.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .collect()
}

fn local_day_bounds(tz: Tz, day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = |d: NaiveDate| {
        tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap())
            .earliest()
            .unwrap()
            .with_timezone(&Utc)
    };
    (start(day), start(day.succ_opt().unwrap()))
}

fn runs_on(e: &Entry, day: &str) -> usize {
    let (from, to) = local_day_bounds(e.timezone, day.parse().unwrap());
    occurrences(e, from, to).count()
}

#[test]
fn new_york_fixed_hour_in_the_spring_gap_runs_once_after_it() {
    let e = entry("30 2 * * *", "America/New_York", "");
    assert_eq!(
        dues(&e, "2026-03-07T00:00:00Z", "2026-03-10T00:00:00Z"),
        [
            "2026-03-07T07:30:00Z", // 02:30 EST
            "2026-03-08T07:00:00Z", // 02:30 does not exist: 03:00 EDT, the first instant after
            "2026-03-09T06:30:00Z", // 02:30 EDT
        ]
    );
}

#[test]
fn several_skipped_times_merge_into_one_run() {
    let e = entry("0,30 2 * * *", "America/New_York", "");
    assert_eq!(
        dues(&e, "2026-03-08T00:00:00Z", "2026-03-09T00:00:00Z"),
        ["2026-03-08T07:00:00Z"]
    );
}

#[test]
fn dst_skipped_skip_drops_the_run_that_day() {
    let e = entry("30 2 * * *", "America/New_York", "dst_skipped = \"skip\"");
    assert_eq!(
        dues(&e, "2026-03-07T00:00:00Z", "2026-03-10T00:00:00Z"),
        ["2026-03-07T07:30:00Z", "2026-03-09T06:30:00Z"]
    );
}

#[test]
fn new_york_fixed_hour_in_the_fall_back_runs_per_dst_repeated() {
    let window = ("2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z");
    // 01:30 EDT is 05:30Z, 01:30 EST is 06:30Z.
    let first = entry("30 1 * * *", "America/New_York", "");
    assert_eq!(dues(&first, window.0, window.1), ["2026-11-01T05:30:00Z"]);
    let last = entry("30 1 * * *", "America/New_York", "dst_repeated = \"last\"");
    assert_eq!(dues(&last, window.0, window.1), ["2026-11-01T06:30:00Z"]);
    let both = entry("30 1 * * *", "America/New_York", "dst_repeated = \"both\"");
    assert_eq!(
        dues(&both, window.0, window.1),
        ["2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z"]
    );
}

#[test]
fn new_york_star_hour_entries_follow_elapsed_time() {
    let hourly = entry("0 * * * *", "America/New_York", "");
    // Fall back: 00:00 EDT, 01:00 EDT, 01:00 EST, 02:00 EST.
    assert_eq!(
        dues(&hourly, "2026-11-01T04:00:00Z", "2026-11-01T08:00:00Z"),
        [
            "2026-11-01T04:00:00Z",
            "2026-11-01T05:00:00Z",
            "2026-11-01T06:00:00Z",
            "2026-11-01T07:00:00Z"
        ]
    );
    // Spring forward: 00:00 EST, 01:00 EST, 03:00 EDT, 04:00 EDT; 02:00 never happens.
    assert_eq!(
        dues(&hourly, "2026-03-08T05:00:00Z", "2026-03-08T09:00:00Z"),
        [
            "2026-03-08T05:00:00Z",
            "2026-03-08T06:00:00Z",
            "2026-03-08T07:00:00Z",
            "2026-03-08T08:00:00Z"
        ]
    );
}

#[test]
fn quarter_hour_and_hourly_counts_on_dst_days() {
    let cases = [
        // zone, spring day, fall day, (*/15 normal, spring, fall), (hourly normal, spring, fall)
        (
            "America/New_York",
            "2026-03-08",
            "2026-11-01",
            (96, 92, 100),
            (24, 23, 25),
        ),
        (
            "Europe/London",
            "2026-03-29",
            "2026-10-25",
            (96, 92, 100),
            (24, 23, 25),
        ),
        // A 30-minute shift: the day is 23.5 or 24.5 hours long. The lost half hour
        // (02:00-02:30) holds one :00 run; the repeated one (01:30-02:00) holds none.
        (
            "Australia/Lord_Howe",
            "2026-10-04",
            "2026-04-05",
            (96, 94, 98),
            (24, 23, 24),
        ),
    ];
    for (tz, spring, fall, quarter, hourly) in cases {
        let q = entry("*/15 * * * *", tz, "");
        let h = entry("0 * * * *", tz, "");
        assert_eq!(runs_on(&q, "2026-06-15"), quarter.0, "{tz} normal */15");
        assert_eq!(runs_on(&q, spring), quarter.1, "{tz} spring */15");
        assert_eq!(runs_on(&q, fall), quarter.2, "{tz} fall */15");
        assert_eq!(runs_on(&h, "2026-06-15"), hourly.0, "{tz} normal hourly");
        assert_eq!(runs_on(&h, spring), hourly.1, "{tz} spring hourly");
        assert_eq!(runs_on(&h, fall), hourly.2, "{tz} fall hourly");
    }
}

#[test]
fn london_fixed_hour_around_both_changes() {
    let e = entry("30 1 * * *", "Europe/London", "");
    // 01:30 does not exist on 2026-03-29: clocks go 01:00 GMT -> 02:00 BST at 01:00Z.
    assert_eq!(
        dues(&e, "2026-03-29T00:00:00Z", "2026-03-30T00:00:00Z"),
        ["2026-03-29T01:00:00Z"]
    );
    // 01:30 happens twice on 2026-10-25: first 01:30 BST = 00:30Z.
    assert_eq!(
        dues(&e, "2026-10-25T00:00:00Z", "2026-10-26T00:00:00Z"),
        ["2026-10-25T00:30:00Z"]
    );
}

#[test]
fn lord_howe_half_hour_shift() {
    // 2026-10-04 02:00 +10:30 (15:30Z the day before) becomes 02:30 +11:00.
    let gap = entry("15 2 * * *", "Australia/Lord_Howe", "");
    assert_eq!(
        dues(&gap, "2026-10-02T00:00:00Z", "2026-10-04T12:00:00Z"),
        [
            "2026-10-02T15:45:00Z", // 02:15 +10:30 on the 3rd
            "2026-10-03T15:30:00Z", // 02:15 does not exist on the 4th: 02:30 +11:00
        ]
    );
    // 2026-04-05 02:00 +11:00 (15:00Z the day before) falls back to 01:30 +10:30.
    let repeated = entry(
        "45 1 * * *",
        "Australia/Lord_Howe",
        "dst_repeated = \"both\"",
    );
    assert_eq!(
        dues(&repeated, "2026-04-04T12:00:00Z", "2026-04-05T12:00:00Z"),
        ["2026-04-04T14:45:00Z", "2026-04-04T15:15:00Z"]
    );
}

#[test]
fn zones_without_dst_and_with_odd_offsets() {
    let kathmandu = entry("0 9 * * *", "Asia/Kathmandu", "");
    assert_eq!(
        dues(&kathmandu, "2026-11-27T00:00:00Z", "2026-11-28T00:00:00Z"),
        ["2026-11-27T03:15:00Z"]
    );
    let tegucigalpa = entry("30 0 * * *", "America/Tegucigalpa", "");
    assert_eq!(
        dues(&tegucigalpa, "2026-11-27T00:00:00Z", "2026-11-29T00:00:00Z"),
        ["2026-11-27T06:30:00Z", "2026-11-28T06:30:00Z"]
    );
    for tz in ["Asia/Kathmandu", "America/Tegucigalpa"] {
        let q = entry("*/15 * * * *", tz, "");
        let mut day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        while day.year_ce().1 == 2026 {
            assert_eq!(runs_on(&q, &day.to_string()), 96, "{tz} {day}");
            day = day.succ_opt().unwrap();
        }
    }
}

#[test]
fn day_of_month_or_day_of_week() {
    // December 2026: the 13th is a Sunday; Fridays are the 4th, 11th, 18th and 25th.
    let e = entry("0 12 13 * 5", "UTC", "");
    assert_eq!(
        dues(&e, "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"),
        [
            "2026-12-04T12:00:00Z",
            "2026-12-11T12:00:00Z",
            "2026-12-13T12:00:00Z",
            "2026-12-18T12:00:00Z",
            "2026-12-25T12:00:00Z"
        ]
    );
}

#[test]
fn sunday_is_both_zero_and_seven() {
    let expected = [
        "2026-11-01T00:00:00Z",
        "2026-11-08T00:00:00Z",
        "2026-11-15T00:00:00Z",
        "2026-11-22T00:00:00Z",
        "2026-11-29T00:00:00Z",
    ];
    for cron in ["0 0 * * 0", "0 0 * * 7", "@weekly"] {
        let e = entry(cron, "UTC", "");
        assert_eq!(
            dues(&e, "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"),
            expected,
            "{cron}"
        );
    }
}

#[test]
fn february_29_only_in_leap_years() {
    let e = entry("0 12 29 2 *", "UTC", "");
    assert_eq!(
        dues(&e, "2026-01-01T00:00:00Z", "2033-01-01T00:00:00Z"),
        ["2028-02-29T12:00:00Z", "2032-02-29T12:00:00Z"]
    );
}

#[test]
fn ranges_are_half_open() {
    let e = entry("0 * * * *", "UTC", "");
    assert_eq!(
        dues(&e, "2026-11-27T10:00:00Z", "2026-11-27T12:00:00Z"),
        ["2026-11-27T10:00:00Z", "2026-11-27T11:00:00Z"]
    );
    assert!(dues(&e, "2026-11-27T10:00:00Z", "2026-11-27T10:00:00Z").is_empty());
}

#[test]
fn steps_ranges_and_lists() {
    let e = entry("5-20/5,45 9 * * 1-5", "UTC", "");
    // Friday 2026-11-27, then Monday 2026-11-30.
    assert_eq!(
        dues(&e, "2026-11-27T00:00:00Z", "2026-12-01T00:00:00Z"),
        [
            "2026-11-27T09:05:00Z",
            "2026-11-27T09:10:00Z",
            "2026-11-27T09:15:00Z",
            "2026-11-27T09:20:00Z",
            "2026-11-27T09:45:00Z",
            "2026-11-30T09:05:00Z",
            "2026-11-30T09:10:00Z",
            "2026-11-30T09:15:00Z",
            "2026-11-30T09:20:00Z",
            "2026-11-30T09:45:00Z"
        ]
    );
}

#[test]
fn every_fixed_time_daily_entry_runs_exactly_once_every_local_day() {
    let zones = [
        "America/New_York",
        "Europe/London",
        "Australia/Lord_Howe",
        "Asia/Kathmandu",
        "America/Tegucigalpa",
    ];
    let times = [
        "0 0", "30 0", "0 1", "30 1", "45 1", "0 2", "15 2", "30 2", "59 2", "0 3", "0 4", "59 23",
    ];
    for tz in zones {
        for time in times {
            let e = entry(&format!("{time} * * *"), tz, "");
            let zone: Tz = tz.parse().unwrap();
            let (from, _) = local_day_bounds(zone, "2026-01-01".parse().unwrap());
            let (_, to) = local_day_bounds(zone, "2026-12-31".parse().unwrap());
            let mut per_day = std::collections::BTreeMap::new();
            for o in occurrences(&e, from, to) {
                *per_day
                    .entry(o.due.with_timezone(&zone).date_naive())
                    .or_insert(0) += 1;
            }
            assert_eq!(per_day.len(), 365, "{tz} {time}: days with a run");
            assert!(
                per_day.values().all(|n| *n == 1),
                "{tz} {time}: {per_day:?}"
            );
        }
    }
}

#[test]
fn jitter_is_deterministic_and_bounded() {
    let e = entry("0 * * * *", "UTC", "jitter = \"5m\"");
    let a: Vec<_> = occurrences(&e, at("2026-11-27T00:00:00Z"), at("2026-11-28T00:00:00Z"))
        .map(|o| o.fire_at(&e))
        .collect();
    let b: Vec<_> = occurrences(&e, at("2026-11-27T00:00:00Z"), at("2026-11-28T00:00:00Z"))
        .map(|o| o.fire_at(&e))
        .collect();
    assert_eq!(a, b);
    let delays: Vec<_> = occurrences(&e, at("2026-11-27T00:00:00Z"), at("2026-11-28T00:00:00Z"))
        .map(|o| o.fire_at(&e) - o.due)
        .collect();
    assert!(
        delays
            .iter()
            .all(|d| *d >= TimeDelta::zero() && *d < TimeDelta::minutes(5))
    );
    assert!(
        delays.iter().any(|d| *d != delays[0]),
        "jitter never varies"
    );
}
