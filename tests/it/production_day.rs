//! End to end in simulated time: `conecta demo seed` data on SQLite, the real scheduler loop
//! and the real worker loop, `schedules/production.toml`, a manual clock moved a minute at a
//! time. What the day must leave behind is checked against the data, not against the runs.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::support::Harness;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use conecta::mail::Mailer;
use conecta::schedule::{Schedule, file};
use conecta::settings::Settings;
use conecta::store::demo::{self, SeedOptions};
use conecta::store::{Db, analytics, outbox, schedule_runs, tenants};

const PRODUCTION: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schedules/production.toml");

fn production(zone: Option<&str>) -> Arc<Schedule> {
    let text = std::fs::read_to_string(PRODUCTION).unwrap();
    let text = match zone {
        Some(z) => text.replace(
            "timezone = \"America/Tegucigalpa\"",
            &format!("timezone = \"{z}\""),
        ),
        None => text,
    };
    Arc::new(file::parse(Path::new("production.toml"), &text, Tz::UTC).unwrap())
}

async fn scalar(db: &Db, sql: &str) -> i64 {
    db.query(sql).scalar::<i64>(db).await.unwrap()
}

/// A harness at `start` with seeded data, mail into a folder and `zone` as APP_TIMEZONE.
async fn setup(start: DateTime<Utc>, zone: Tz, mail: &Path) -> (Harness, demo::SeedReport) {
    let mut h = crate::support::harness_from("sqlite", start).await.unwrap();
    h.rt.settings = Arc::new(Settings {
        app_timezone: zone,
        mailer: Mailer::File {
            dir: mail.to_path_buf(),
            from: "noreply@vito.test".into(),
        },
        ..Settings::default()
    });
    let seeded = demo::seed(
        &h.db,
        &SeedOptions {
            tenants: 20,
            ..SeedOptions::default()
        },
        start,
        |_| {},
    )
    .await
    .unwrap();
    (h, seeded)
}

/// The state a day must leave, whatever happened during it: every order that was pending is
/// cancelled exactly once with its stock back, every appointment the reminder runs covered
/// got exactly one reminder and one mail, the outbox is drained, no job failed.
async fn assert_nothing_lost_nothing_doubled(
    h: &Harness,
    seeded: &demo::SeedReport,
    stock_before: i64,
    restock: i64,
    mail: &Path,
) {
    let db = &h.db;
    assert_eq!(
        scalar(db, "SELECT COUNT(*) FROM orders WHERE status = 'pending'").await,
        0,
        "every pending order went stale during the day and was released"
    );
    let events = |t: &str| format!("SELECT COUNT(*) FROM outbox_messages WHERE event_type = '{t}'");
    assert_eq!(
        scalar(db, &events("OrderCancelled")).await,
        seeded.pending_orders as i64
    );
    assert_eq!(
        scalar(
            db,
            "SELECT COUNT(DISTINCT aggregate_id) FROM outbox_messages WHERE event_type = 'OrderCancelled'"
        )
        .await,
        seeded.pending_orders as i64,
        "one event per order"
    );
    assert_eq!(
        demo::total_stock(db).await.unwrap(),
        stock_before + restock,
        "stock restored exactly once"
    );
    // Reminders: the windows of the successful runs, stitched together, cover
    // [first run + 23h, last run + 24h); each appointment there has one reminder.
    let runs = schedule_runs::history(db, Some("appointments:send-reminders"), 1000)
        .await
        .unwrap();
    let ok: Vec<_> = runs.iter().filter(|r| r.outcome == "succeeded").collect();
    let first = ok.iter().map(|r| r.due_at).min().unwrap();
    let last = ok.iter().map(|r| r.due_at).max().unwrap();
    let (from, to) = (
        (first + TimeDelta::hours(23)).timestamp(),
        (last + TimeDelta::hours(24)).timestamp(),
    );
    let expected = scalar(
        db,
        &format!(
            "SELECT COUNT(*) FROM appointments WHERE starts_at >= {from} AND starts_at < {to}"
        ),
    )
    .await;
    assert!(
        expected > 5,
        "the seed has appointments in range: {expected}"
    );
    assert_eq!(
        scalar(
            db,
            "SELECT COUNT(*) FROM appointments WHERE reminder_sent_at IS NOT NULL"
        )
        .await,
        expected,
        "every appointment in range reminded, none outside"
    );
    assert_eq!(
        scalar(db, &events("AppointmentReminderDue")).await,
        expected
    );
    // Mails: one file per event, none twice.
    let mut subjects: BTreeMap<String, i64> = BTreeMap::new();
    for entry in std::fs::read_dir(mail).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let subject = text
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap();
        let kind = if subject.starts_with("Reminder") {
            "reminder"
        } else {
            "cancellation"
        };
        *subjects.entry(kind.into()).or_default() += 1;
    }
    assert_eq!(subjects.get("reminder").copied().unwrap_or(0), expected);
    assert_eq!(
        subjects.get("cancellation").copied().unwrap_or(0),
        seeded.pending_orders as i64
    );
    assert_eq!(outbox::backlog(db).await.unwrap(), 0, "outbox drained");
    assert_eq!(scalar(db, "SELECT COUNT(*) FROM failed_jobs").await, 0);
    assert_eq!(h.pending().await, 0);
}

async fn restock_due(db: &Db) -> i64 {
    scalar(
        db,
        "SELECT CAST(COALESCE(SUM(i.quantity), 0) AS BIGINT) FROM order_items i JOIN orders o ON o.id = i.order_id WHERE o.status = 'pending'",
    )
    .await
}

/// The runs of each production entry on one full local day (every occurrence has a row).
fn assert_a_full_day(days: &BTreeMap<(String, NaiveDate), usize>, day: &str) {
    let day: NaiveDate = day.parse().unwrap();
    for (entry, n) in [
        ("outbox:process", 1440),
        ("orders:release-stale", 96),
        ("appointments:send-reminders", 24),
        ("analytics:sync", 1),
        ("model:prune", 1),
    ] {
        assert_eq!(
            days.get(&(entry.to_string(), day)).copied(),
            Some(n),
            "{entry} on {day}"
        );
    }
}

/// Runs per entry per local day.
fn per_day(runs: &[schedule_runs::Run], zone: Tz) -> BTreeMap<(String, NaiveDate), usize> {
    let mut out = BTreeMap::new();
    for r in runs {
        let day = r.due_at.with_timezone(&zone).date_naive();
        *out.entry((r.entry.clone(), day)).or_default() += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_production_day_releases_reminds_syncs_drains_and_prunes() {
    let zone: Tz = "America/Tegucigalpa".parse().unwrap();
    let start: DateTime<Utc> = "2026-11-27T06:00:00Z".parse().unwrap(); // 00:00 local
    let end = start + TimeDelta::days(1);
    let mail = tempfile::tempdir().unwrap();
    let (h, seeded) = setup(start, zone, mail.path()).await;
    let stock = demo::total_stock(&h.db).await.unwrap();
    let restock = restock_due(&h.db).await;

    crate::support::live(&h, &production(None), end - TimeDelta::minutes(1), true).await;

    assert_nothing_lost_nothing_doubled(&h, &seeded, stock, restock, mail.path()).await;
    let runs = schedule_runs::history(&h.db, None, 10_000).await.unwrap();
    assert!(
        runs.iter().all(|r| r.outcome == "succeeded"),
        "{:?}",
        runs.iter().find(|r| r.outcome != "succeeded")
    );
    let days = per_day(&runs, zone);
    assert_a_full_day(&days, "2026-11-27");
    let prune = runs.iter().find(|r| r.entry == "model:prune").unwrap();
    assert_eq!(
        prune.due_at,
        "2026-11-27T10:00:00Z".parse::<DateTime<Utc>>().unwrap(),
        "04:00 local"
    );
    // One analytics row per approved tenant for yesterday.
    assert_eq!(
        analytics::rows_for(&h.db, "2026-11-26").await.unwrap(),
        tenants::count_approved(&h.db).await.unwrap() as i64
    );
    assert_eq!(
        analytics::rows_for(&h.db, "2026-11-26").await.unwrap(),
        seeded.approved as i64
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_day_with_a_five_hour_outage_loses_nothing_and_doubles_nothing() {
    let zone: Tz = "America/Tegucigalpa".parse().unwrap();
    let start: DateTime<Utc> = "2026-11-27T06:00:00Z".parse().unwrap();
    let end = start + TimeDelta::days(1);
    let mail = tempfile::tempdir().unwrap();
    let (h, seeded) = setup(start, zone, mail.path()).await;
    let stock = demo::total_stock(&h.db).await.unwrap();
    let restock = restock_due(&h.db).await;
    let schedule = production(None);

    // Up 00:00-10:00 local, down until 15:00, up to the end of the day.
    crate::support::live(&h, &schedule, start + TimeDelta::hours(10), true).await;
    h.clock.set(start + TimeDelta::hours(15));
    crate::support::live(&h, &schedule, end - TimeDelta::minutes(1), true).await;

    assert_nothing_lost_nothing_doubled(&h, &seeded, stock, restock, mail.path()).await;
    let runs = schedule_runs::history(&h.db, None, 10_000).await.unwrap();
    let days = per_day(&runs, zone);
    // Every occurrence has exactly one row: run, recorded missed by the catch-up, or skipped
    // because the catch-up run of the same entry was still going when it fell due.
    assert_a_full_day(&days, "2026-11-27");
    let odd: Vec<_> = runs
        .iter()
        .filter(|r| !["succeeded", "missed", "skipped_overlap"].contains(&r.outcome.as_str()))
        .collect();
    assert!(odd.is_empty(), "{odd:#?}");
    assert!(runs.iter().any(|r| r.outcome == "missed"));
    assert_eq!(
        analytics::rows_for(&h.db, "2026-11-26").await.unwrap(),
        seeded.approved as i64
    );
    h.finish().await;
}

/// Issue 4's end-to-end check: a New York copy of the production schedule through three local
/// days spanning the spring-forward of 2026-03-08, with scheduler and worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_new_york_days_across_spring_forward_run_the_exact_counts() {
    let zone: Tz = "America/New_York".parse().unwrap();
    let start: DateTime<Utc> = "2026-03-07T05:00:00Z".parse().unwrap(); // 00:00 EST, Mar 7
    let end: DateTime<Utc> = "2026-03-10T04:00:00Z".parse().unwrap(); // 00:00 EDT, Mar 10
    let mail = tempfile::tempdir().unwrap();
    let (h, seeded) = setup(start, zone, mail.path()).await;
    let stock = demo::total_stock(&h.db).await.unwrap();
    let restock = restock_due(&h.db).await;

    crate::support::live(
        &h,
        &production(Some("America/New_York")),
        end - TimeDelta::minutes(1),
        true,
    )
    .await;

    let runs = schedule_runs::history(&h.db, None, 100_000).await.unwrap();
    assert!(runs.iter().all(|r| r.outcome == "succeeded"));
    let days = per_day(&runs, zone);
    // Hand-counted: Mar 8 has 23 hours (02:00-02:59 does not exist).
    for (day, minutes, quarters, hours) in [
        ("2026-03-07", 1440, 96, 24),
        ("2026-03-08", 1380, 92, 23),
        ("2026-03-09", 1440, 96, 24),
    ] {
        let day: NaiveDate = day.parse().unwrap();
        let count = |e: &str| days.get(&(e.to_string(), day)).copied().unwrap_or(0);
        assert_eq!(count("outbox:process"), minutes, "{day}");
        assert_eq!(count("orders:release-stale"), quarters, "{day}");
        assert_eq!(count("appointments:send-reminders"), hours, "{day}");
        assert_eq!(count("analytics:sync"), 1, "{day}");
        assert_eq!(count("model:prune"), 1, "{day}");
    }
    for date in ["2026-03-06", "2026-03-07", "2026-03-08"] {
        assert_eq!(
            analytics::rows_for(&h.db, date).await.unwrap(),
            seeded.approved as i64,
            "{date}"
        );
    }
    assert_nothing_lost_nothing_doubled(&h, &seeded, stock, restock, mail.path()).await;
    h.finish().await;
}
