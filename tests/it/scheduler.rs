//! The scheduler loop in simulated time, and the exactly-once claim on every database.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::support::Harness;
use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use conecta::schedule::{file, scheduler};
use conecta::store::schedule_runs::{self, Claim};

async fn exactly_one_claim_wins(h: Harness) {
    let due: DateTime<Utc> = "2026-11-27T12:00:00Z".parse().unwrap();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let db = h.db.clone();
        let now = h.now();
        tasks.push(tokio::spawn(async move {
            let runner = format!("replica-{i}");
            let claim = Claim {
                entry: "outbox:process",
                task: "outbox:process",
                due,
                manual: false,
                runner: &runner,
            };
            schedule_runs::claim(&db, &claim, now).await.unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        if t.await.unwrap().is_some() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1, "[{}]", h.name);
    let runs = schedule_runs::history(&h.db, Some("outbox:process"), 10)
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].due_at, due);
    assert_eq!(runs[0].outcome, "running");
    h.finish().await;
}

on_databases!(exactly_one_claim_wins);

const SCHEDULE: &str = r#"
timezone = "America/New_York"

[[task]]
name = "quarter-hourly"
task = "diagnostics:noop"
cron = "*/15 * * * *"

[[task]]
name = "nightly-0230"
task = "diagnostics:noop"
cron = "30 2 * * *"

[[task]]
name = "hourly-queued"
task = "diagnostics:noop"
cron = "0 * * * *"
mode = "queue"

[[task]]
name = "unimplemented"
task = "diagnostics:fail"
cron = "0 4 * * *"
args = { message = "this entry fails on purpose" }
"#;

/// Three local days in New York spanning the spring-forward of 2026-03-08, run by the real
/// scheduler loop on a manual clock that moves a minute at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_days_across_a_dst_change_run_exactly_as_planned() {
    let start: DateTime<Utc> = "2026-03-07T05:00:00Z".parse().unwrap(); // 00:00 EST, Mar 7
    let end: DateTime<Utc> = "2026-03-10T04:00:00Z".parse().unwrap(); // 00:00 EDT, Mar 10
    let h = crate::support::harness_from("sqlite", start).await.unwrap();
    let schedule = Arc::new(file::parse("ny.toml".as_ref(), SCHEDULE, Tz::UTC).unwrap());
    // The clock stops one minute short of `end`, so nothing due at `end` fires.
    crate::support::live(&h, &schedule, end - TimeDelta::minutes(1), false).await;

    let runs = schedule_runs::history(&h.db, None, 10_000).await.unwrap();
    let ny: Tz = "America/New_York".parse().unwrap();
    let mut per_day: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in &runs {
        assert!(r.due_at >= start && r.due_at < end, "{r:?}");
        let day = r.due_at.with_timezone(&ny).date_naive().to_string();
        *per_day.entry((r.entry.clone(), day)).or_default() += 1;
    }
    let count = |e: &str, d: &str| {
        per_day
            .get(&(e.to_string(), d.to_string()))
            .copied()
            .unwrap_or(0)
    };
    // Hand-counted from docs/schedule.md: the 23-hour day has 92 quarter hours and 23 hours.
    for (day, quarters, hours) in [
        ("2026-03-07", 96, 24),
        ("2026-03-08", 92, 23),
        ("2026-03-09", 96, 24),
    ] {
        assert_eq!(count("quarter-hourly", day), quarters, "{day}");
        assert_eq!(count("hourly-queued", day), hours, "{day}");
        assert_eq!(count("nightly-0230", day), 1, "{day}");
        assert_eq!(count("unimplemented", day), 1, "{day}");
    }
    // 02:30 did not exist on Mar 8: it ran at 03:00 EDT = 07:00Z.
    assert!(runs.iter().any(|r| r.entry == "nightly-0230"
        && r.due_at == "2026-03-08T07:00:00Z".parse::<DateTime<Utc>>().unwrap()));
    for r in &runs {
        let expected = if r.entry == "unimplemented" {
            "failed"
        } else {
            "succeeded"
        };
        assert_eq!(r.outcome, expected, "{r:?}");
        assert!(r.finished_at.is_some());
    }
    let unimplemented = runs.iter().find(|r| r.entry == "unimplemented").unwrap();
    assert!(
        unimplemented
            .error
            .as_deref()
            .unwrap()
            .contains("fails on purpose")
    );
    // Queue mode enqueued one job per hourly occurrence.
    let queued: u64 = h.pending().await;
    assert_eq!(queued, 24 + 23 + 24);
    h.finish().await;
}

const CATCH_UP: &str = r#"
timezone = "UTC"

[[task]]
name = "skip"
task = "diagnostics:noop"
cron = "*/15 * * * *"
catch_up = "skip"

[[task]]
name = "latest"
task = "diagnostics:noop"
cron = "*/15 * * * *"
catch_up = "latest"
catch_up_window = "1h"

[[task]]
name = "all"
task = "diagnostics:noop"
cron = "*/15 * * * *"
catch_up = "all"
catch_up_window = "2h"
catch_up_max = 3
"#;

/// Up for an hour, down for five, up again: each policy runs and records exactly what
/// docs/schedule.md (catch-up) says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_after_five_hours_down_follows_each_policy() {
    let t0: DateTime<Utc> = "2026-11-27T10:00:00Z".parse().unwrap();
    let h = crate::support::harness_from("sqlite", t0).await.unwrap();
    let schedule = Arc::new(file::parse("c.toml".as_ref(), CATCH_UP, Tz::UTC).unwrap());
    // Up 10:00-11:00: 10:00, 10:15, 10:30, 10:45, 11:00 run for each entry.
    crate::support::live(
        &h,
        &schedule,
        "2026-11-27T11:00:00Z".parse().unwrap(),
        false,
    )
    .await;
    // Down until 16:05; missed: 11:15 ... 16:00, twenty occurrences each.
    h.clock.set("2026-11-27T16:05:00Z".parse().unwrap());
    crate::support::live(
        &h,
        &schedule,
        "2026-11-27T16:05:00Z".parse().unwrap(),
        false,
    )
    .await;

    let runs = schedule_runs::history(&h.db, None, 1000).await.unwrap();
    let outcome_count = |entry: &str, outcome: &str| {
        runs.iter()
            .filter(|r| {
                r.entry == entry
                    && r.outcome == outcome
                    && r.due_at > "2026-11-27T11:00:00Z".parse::<DateTime<Utc>>().unwrap()
            })
            .count()
    };
    for entry in ["skip", "latest", "all"] {
        let before = runs
            .iter()
            .filter(|r| {
                r.entry == entry
                    && r.due_at <= "2026-11-27T11:00:00Z".parse::<DateTime<Utc>>().unwrap()
            })
            .count();
        assert_eq!(before, 5, "{entry}: runs while up");
        let after = runs
            .iter()
            .filter(|r| {
                r.entry == entry
                    && r.due_at > "2026-11-27T11:00:00Z".parse::<DateTime<Utc>>().unwrap()
            })
            .count();
        assert_eq!(after, 20, "{entry}: every missed occurrence has a row");
    }
    assert_eq!(
        (
            outcome_count("skip", "succeeded"),
            outcome_count("skip", "missed")
        ),
        (0, 20)
    );
    assert_eq!(
        (
            outcome_count("latest", "succeeded"),
            outcome_count("latest", "missed")
        ),
        (1, 19)
    );
    let latest = runs
        .iter()
        .find(|r| {
            r.entry == "latest"
                && r.outcome == "succeeded"
                && r.due_at > "2026-11-27T11:00:00Z".parse::<DateTime<Utc>>().unwrap()
        })
        .unwrap();
    assert_eq!(
        latest.due_at,
        "2026-11-27T16:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    // The 2h window holds 14:15 ... 16:00 (eight); at most three run, the newest.
    assert_eq!(
        (
            outcome_count("all", "succeeded"),
            outcome_count("all", "missed")
        ),
        (3, 17)
    );
    let mut ran: Vec<DateTime<Utc>> = runs
        .iter()
        .filter(|r| {
            r.entry == "all"
                && r.outcome == "succeeded"
                && r.due_at > "2026-11-27T11:00:00Z".parse::<DateTime<Utc>>().unwrap()
        })
        .map(|r| r.due_at)
        .collect();
    ran.sort();
    let expected: Vec<DateTime<Utc>> = [
        "2026-11-27T15:30:00Z",
        "2026-11-27T15:45:00Z",
        "2026-11-27T16:00:00Z",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    assert_eq!(ran, expected);
    h.finish().await;
}

/// A task whose handler panics is recorded as failed, not lost with its run left `running`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inline_task_that_panics_fails_with_the_panic_message() {
    let h = crate::support::harness("sqlite").await.unwrap();
    let args = serde_json::json!({ "n": 1 }).as_object().unwrap().clone();
    let (outcome, error) = scheduler::execute(
        &h.rt,
        "test:panic",
        &args,
        conecta::schedule::Mode::Inline,
        "default",
        None,
        &|| true,
    )
    .await;
    assert_eq!(outcome, schedule_runs::Outcome::Failed);
    assert!(
        error
            .unwrap()
            .contains("handler panicked: test:panic was asked to panic")
    );
    h.finish().await;
}

fn at_end(runs: &[schedule_runs::Run], due: DateTime<Utc>) -> &str {
    &runs.iter().find(|r| r.due_at == due).unwrap().outcome
}

const BUFFER_ONE: &str = r#"
[[task]]
name = "slow"
task = "diagnostics:sleep"
cron = "* * * * *"
overlap = "buffer-one"
args = { ms = 150000 }
"#;

/// `overlap = "buffer-one"`: a 2.5-minute run every minute. The 10:01 occurrence waits for
/// the 10:00 run and starts when it ends; 10:02 finds the seat taken and is skipped; 10:03
/// waits for 10:01 in turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffer_one_runs_one_waiting_occurrence_after_the_running_one() {
    let t0: DateTime<Utc> = "2026-11-27T10:00:00Z".parse().unwrap();
    let h = crate::support::harness_from("sqlite", t0 - TimeDelta::seconds(1))
        .await
        .unwrap();
    let schedule = Arc::new(file::parse("b.toml".as_ref(), BUFFER_ONE, Tz::UTC).unwrap());
    let stop = conecta::stop::StopHandle::default();
    let looping = tokio::spawn(scheduler::run(schedule, h.rt.clone(), stop.clone(), None));
    // Second by second to 10:03:30, letting the loop and its runs catch up at each step.
    let mut now = t0 - TimeDelta::seconds(1);
    while now < t0 + TimeDelta::seconds(210) {
        tokio::time::sleep(std::time::Duration::from_millis(4)).await;
        now += TimeDelta::seconds(1);
        h.clock.set(now);
    }
    // Until the 10:03 occurrence sits in the seat (its row is written when it is claimed).
    let t3 = t0 + TimeDelta::minutes(3);
    let mut runs = Vec::new();
    for _ in 0..200 {
        runs = schedule_runs::history(&h.db, Some("slow"), 100)
            .await
            .unwrap();
        if runs.iter().any(|r| r.due_at == t3) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let at = |m: i64| {
        runs.iter()
            .find(|r| r.due_at == t0 + TimeDelta::minutes(m))
            .unwrap_or_else(|| panic!("no run for 10:0{m}: {runs:#?}"))
    };
    assert_eq!(at(0).outcome, "succeeded");
    let (first_end, second_start) = (at(0).finished_at.unwrap(), at(1).started_at.unwrap());
    assert_eq!(
        at(1).outcome,
        "running",
        "10:01 runs after 10:00: {runs:#?}"
    );
    assert!(
        second_start >= first_end && second_start - first_end <= TimeDelta::seconds(5),
        "10:01 started {second_start} right after 10:00 ended {first_end}"
    );
    assert_eq!(at(2).outcome, "skipped_overlap");
    assert_eq!(at(3).outcome, "running", "10:03 waits in the seat");
    assert!(at(3).started_at.unwrap() < t0 + TimeDelta::minutes(3) + TimeDelta::seconds(10));
    // A stop lets the running one finish and gives up the waiting seat.
    stop.stop(conecta::stop::StopReason::Signal);
    while !looping.is_finished() {
        now += TimeDelta::seconds(1);
        h.clock.set(now);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    looping.await.unwrap().unwrap();
    let runs = schedule_runs::history(&h.db, Some("slow"), 100)
        .await
        .unwrap();
    assert!(runs.iter().all(|r| r.outcome != "running"), "{runs:#?}");
    assert_eq!(at_end(&runs, t0 + TimeDelta::minutes(3)), "skipped_overlap");
    h.finish().await;
}
