//! The governance tasks' contracts (docs/outbox.md, §7), written once and run on SQLite, PostgreSQL
//! and MariaDB: release-stale, the outbox processor, reminders, the analytics fan-out,
//! audit-limits and prune, including the concurrent-run cases.

use crate::support::Harness;
use chrono::{DateTime, TimeDelta, Utc};
use conecta::queue::{JobContext, Runtime};
use conecta::store::demo::{self, SeedOptions};
use conecta::store::outbox::{self, NewMessage};
use conecta::store::schedule_runs::{self, Claim, Outcome};
use conecta::store::{Db, analytics, appointments, tenants};
use conecta::tasks;
use serde_json::json;

fn ctx(rt: &Runtime) -> JobContext {
    rt.context("test".into(), 1, "inline")
}

/// One integer from `sql` (written with `?` placeholders, no binds).
async fn scalar(db: &Db, sql: &str) -> i64 {
    db.query(sql).scalar::<i64>(db).await.unwrap()
}

async fn seed(h: &Harness, o: SeedOptions) -> demo::SeedReport {
    demo::seed(&h.db, &o, h.now(), |_| {}).await.unwrap()
}

async fn two_concurrent_release_stale_runs_release_each_order_once(h: Harness) {
    let report = seed(
        &h,
        SeedOptions {
            tenants: 12,
            ..SeedOptions::default()
        },
    )
    .await;
    let cutoff = (h.now() - TimeDelta::minutes(30)).timestamp();
    let stale = scalar(
        &h.db,
        &format!("SELECT COUNT(*) FROM orders WHERE status = 'pending' AND created_at < {cutoff}"),
    )
    .await;
    let fresh = report.pending_orders as i64 - stale;
    assert!(
        stale > 20 && fresh > 0,
        "seed: {stale} stale, {fresh} fresh"
    );
    let to_restore = scalar(
        &h.db,
        &format!(
            "SELECT CAST(COALESCE(SUM(i.quantity), 0) AS {}) FROM order_items i JOIN orders o ON o.id = i.order_id \
             WHERE o.status = 'pending' AND o.created_at < {cutoff}",
            if h.db.backend() == conecta::store::Backend::MySql { "SIGNED" } else { "BIGINT" }
        ),
    )
    .await;
    let stock_before = demo::total_stock(&h.db).await.unwrap();

    let (a, b) = (ctx(&h.rt), ctx(&h.rt));
    let age = TimeDelta::minutes(30);
    let (ra, rb) = tokio::join!(
        tasks::orders::release_stale(&a, age, None, |_| {}),
        tasks::orders::release_stale(&b, age, None, |_| {}),
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.released + rb.released, stale as u64, "[{}]", h.name);
    assert_eq!(
        demo::total_stock(&h.db).await.unwrap(),
        stock_before + to_restore,
        "[{}] stock restored exactly once",
        h.name
    );
    let cancelled_events = scalar(
        &h.db,
        "SELECT COUNT(*) FROM outbox_messages WHERE event_type = 'OrderCancelled'",
    )
    .await;
    assert_eq!(cancelled_events, stale);
    let distinct = scalar(
        &h.db,
        "SELECT COUNT(DISTINCT aggregate_id) FROM outbox_messages WHERE event_type = 'OrderCancelled'",
    )
    .await;
    assert_eq!(distinct, stale, "one event per order");
    assert_eq!(
        scalar(
            &h.db,
            "SELECT COUNT(*) FROM orders WHERE status = 'pending'"
        )
        .await,
        fresh,
        "fresh orders stay pending"
    );
    // A third run finds nothing; per-tenant scoping touches only that tenant.
    let again = tasks::orders::release_stale(&a, age, None, |_| {})
        .await
        .unwrap();
    assert_eq!(again.released, 0);
    h.clock.advance(TimeDelta::hours(1));
    let one = tasks::orders::release_stale(&a, age, Some(1), |_| {})
        .await
        .unwrap();
    let tenant_one_pending = scalar(
        &h.db,
        "SELECT COUNT(*) FROM orders WHERE status = 'pending' AND tenant_id = 1",
    )
    .await;
    assert_eq!(tenant_one_pending, 0);
    assert_eq!(
        scalar(
            &h.db,
            "SELECT COUNT(*) FROM orders WHERE status = 'pending'"
        )
        .await,
        fresh - one.released as i64
    );
    h.finish().await;
}

async fn insert_events(db: &Db, n: usize, event_type: &'static str, now: DateTime<Utc>) {
    for i in 0..n {
        let mut tx = db.begin().await.unwrap();
        outbox::insert_tx(
            &mut tx,
            &NewMessage {
                aggregate_type: "appointment",
                aggregate_id: i.to_string(),
                event_type,
                payload: json!({
                    "appointment_id": i, "tenant_id": 1, "customer_name": "Ana",
                    "customer_email": format!("c{i}@example.test"), "starts_at": "2026-11-28T10:00:00Z",
                }),
            },
            now,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
}

async fn two_outbox_processors_never_publish_a_row_twice(h: Harness) {
    insert_events(&h.db, 600, "AppointmentReminderDue", h.now()).await;
    // A rolled-back transaction leaves no outbox row.
    let mut tx = h.db.begin().await.unwrap();
    outbox::insert_tx(
        &mut tx,
        &NewMessage {
            aggregate_type: "order",
            aggregate_id: "x".into(),
            event_type: "OrderCancelled",
            payload: json!({}),
        },
        h.now(),
    )
    .await
    .unwrap();
    drop(tx);
    let (a, b) = tokio::join!(
        tasks::outbox::process(&h.rt, 50, None, |_| {}),
        tasks::outbox::process(&h.rt, 50, None, |_| {}),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.published + b.published, 600, "[{}] {a:?} {b:?}", h.name);
    assert_eq!(a.failed + b.failed, 0);
    assert_eq!(outbox::backlog(&h.db).await.unwrap(), 0);
    assert_eq!(h.pending().await, 600, "one job per message, none twice");
    // The jobs send one mail each.
    crate::support::drain(&h).await;
    assert_eq!(h.pending().await, 0);
    assert_eq!(scalar(&h.db, "SELECT COUNT(*) FROM failed_jobs").await, 0);
    // Replay publishes a processed range again.
    let (n, failures) = tasks::outbox::replay(&h.rt, 1, 10, |_| {}).await.unwrap();
    assert_eq!((n, failures.len()), (10, 0));
    assert_eq!(h.pending().await, 10);
    h.finish().await;
}

async fn a_failing_publish_records_its_error_and_backs_off(h: Harness) {
    insert_events(&h.db, 1, "NoSuchEvent", h.now()).await;
    let r = tasks::outbox::process(&h.rt, 10, None, |_| {})
        .await
        .unwrap();
    assert_eq!((r.published, r.failed), (0, 1));
    let m = &outbox::range(&h.db, 1, 1).await.unwrap()[0];
    assert!(
        m.last_error.as_deref().unwrap().contains("NoSuchEvent"),
        "{m:?}"
    );
    assert_eq!(m.attempts, 1);
    assert_eq!(m.available_at, h.now() + TimeDelta::seconds(10));
    assert!(m.processed_at.is_none() && m.claimed_at.is_none());
    // Not retried before its backoff, retried after.
    let r = tasks::outbox::process(&h.rt, 10, None, |_| {})
        .await
        .unwrap();
    assert_eq!(r.failed, 0);
    h.clock.advance(TimeDelta::seconds(11));
    let r = tasks::outbox::process(&h.rt, 10, None, |_| {})
        .await
        .unwrap();
    assert_eq!(r.failed, 1);
    let m = &outbox::range(&h.db, 1, 1).await.unwrap()[0];
    assert_eq!(m.attempts, 2);
    assert_eq!(m.available_at, h.now() + TimeDelta::seconds(20));
    // The coroner lists it once it has failed enough, and a stale claim too.
    assert!(
        outbox::stuck(&h.db, h.now(), 3, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(outbox::stuck(&h.db, h.now(), 2, 10).await.unwrap().len(), 1);
    insert_events(&h.db, 1, "AppointmentReminderDue", h.now()).await;
    let claimed = outbox::claim(&h.db, 10, "ghost", h.now(), TimeDelta::minutes(5))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "only the available message");
    h.clock.advance(TimeDelta::minutes(11));
    let stuck = outbox::stuck(&h.db, h.now() - TimeDelta::minutes(10), 99, 10)
        .await
        .unwrap();
    assert_eq!(stuck.len(), 1);
    assert_eq!(stuck[0].claimed_by.as_deref(), Some("ghost"));
    // A dead processor's claim is taken over after RECLAIM_AFTER.
    let r = tasks::outbox::process(&h.rt, 10, None, |_| {})
        .await
        .unwrap();
    assert_eq!(r.published, 1);
    // Clock skew: a claim is taken over only once it is older than RECLAIM_AFTER plus the
    // tolerated skew, so a processor whose clock runs a few seconds fast leaves it alone.
    insert_events(&h.db, 1, "AppointmentReminderDue", h.now()).await;
    let held = outbox::claim(&h.db, 10, "alive", h.now(), tasks::outbox::RECLAIM_AFTER)
        .await
        .unwrap();
    assert_eq!(held.len(), 1);
    h.clock.advance(
        tasks::outbox::RECLAIM_AFTER + conecta::clock::MAX_CLOCK_SKEW - TimeDelta::seconds(1),
    );
    let r = tasks::outbox::process(&h.rt, 10, None, |_| {})
        .await
        .unwrap();
    assert_eq!(
        r.published, 0,
        "a claim within the skew bound is not taken over"
    );
    h.clock.advance(TimeDelta::seconds(2));
    let r = tasks::outbox::process(&h.rt, 10, None, |_| {})
        .await
        .unwrap();
    assert_eq!(r.published, 1, "past the bound the claim is taken over");
    h.finish().await;
}

async fn reminders_go_out_once_and_reach_back_after_downtime(h: Harness) {
    let now = h.now();
    let t = |hours: i64, minutes: i64| now + TimeDelta::hours(hours) + TimeDelta::minutes(minutes);
    let starts = [
        t(23, 30), // in the usual window
        t(23, 0),  // its edge, included
        t(24, 0),  // the other edge, excluded
        t(20, 0),  // only reached after downtime
        t(10, 0),  // too soon even then
        t(30, 0),  // later
    ];
    let rows: Vec<Vec<demo::Cell>> = starts
        .iter()
        .enumerate()
        .map(|(i, s)| {
            vec![
                demo::Cell::Int(i as i64 + 1),
                demo::Cell::Int(1),
                demo::Cell::Text(format!("Cliente {i}")),
                demo::Cell::Text(format!("c{i}@example.test")),
                demo::Cell::Int(s.timestamp()),
                demo::Cell::Null,
                demo::Cell::Int(now.timestamp()),
            ]
        })
        .collect();
    demo::insert_rows(&h.db, &demo::APPOINTMENTS, &rows)
        .await
        .unwrap();
    let (a, b) = (ctx(&h.rt), ctx(&h.rt));
    let (x, y) = tokio::join!(
        tasks::reminders::send_reminders(&a, None),
        tasks::reminders::send_reminders(&b, None)
    );
    assert_eq!(x.unwrap() + y.unwrap(), 2, "[{}]", h.name);
    let reminded = |id| {
        let db = h.db.clone();
        async move {
            appointments::find(&db, id)
                .await
                .unwrap()
                .unwrap()
                .reminder_sent_at
                .is_some()
        }
    };
    assert!(reminded(1).await && reminded(2).await && !reminded(3).await);
    // The last good run was five hours ago: its window ended at now + 19h.
    let runner = "test";
    let id = schedule_runs::claim(
        &h.db,
        &Claim {
            entry: tasks::reminders::NAME,
            task: tasks::reminders::NAME,
            due: now - TimeDelta::hours(5),
            manual: false,
            runner,
        },
        now,
    )
    .await
    .unwrap()
    .unwrap();
    schedule_runs::finish(&h.db, id, Outcome::Succeeded, None, now)
        .await
        .unwrap();
    assert_eq!(tasks::reminders::send_reminders(&a, None).await.unwrap(), 1);
    assert!(reminded(4).await && !reminded(5).await && !reminded(6).await);
    assert_eq!(
        scalar(
            &h.db,
            "SELECT COUNT(*) FROM outbox_messages WHERE event_type = 'AppointmentReminderDue'"
        )
        .await,
        3
    );
    h.finish().await;
}

async fn analytics_fan_out_is_unique_per_date_and_upserts(h: Harness) {
    let report = seed(
        &h,
        SeedOptions {
            tenants: 40,
            ..SeedOptions::default()
        },
    )
    .await;
    let c = ctx(&h.rt);
    let date = tasks::analytics::yesterday(h.now(), chrono_tz::Tz::UTC);
    let first = tasks::analytics::sync(&c, date, 7, None).await.unwrap();
    assert_eq!(first.enqueued, report.approved, "[{}]", h.name);
    let second = tasks::analytics::sync(&c, date, 7, None).await.unwrap();
    assert_eq!(
        (second.enqueued, second.duplicates),
        (0, report.approved),
        "a second run for the same date enqueues nothing"
    );
    crate::support::drain(&h).await;
    // Still nothing after the jobs ran: the lock outlives them.
    let third = tasks::analytics::sync(&c, date, 500, None).await.unwrap();
    assert_eq!(third.enqueued, 0);
    assert_eq!(
        analytics::rows_for(&h.db, &date.to_string()).await.unwrap(),
        report.approved as i64
    );
    let batch = conecta::store::batches::find(&h.db, &first.batch_id)
        .await
        .unwrap()
        .unwrap();
    assert!(batch.finished_at.is_some() && batch.failed_jobs == 0);
    // The per-tenant job is an idempotent upsert of the tenant's local day.
    let tenant = tenants::approved_after(&h.db, 0, 1).await.unwrap()[0];
    let before = analytics::find(&h.db, tenant, &date.to_string())
        .await
        .unwrap()
        .unwrap();
    h.rt.dispatch(conecta::queue::NewJob::new(
        "SyncTenantAnalytics",
        json!({"tenant": tenant, "date": date.to_string()}),
    ))
    .await
    .unwrap();
    crate::support::drain(&h).await;
    let after = analytics::find(&h.db, tenant, &date.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before, after);
    let total: i64 = scalar(
        &h.db,
        &format!("SELECT COUNT(*) FROM interactions WHERE tenant_id = {tenant}"),
    )
    .await;
    assert!(
        after.interactions <= total && after.interactions > 0,
        "{after:?}"
    );
    assert_eq!(
        after.interactions,
        after.interactions_by_kind.values().sum::<i64>()
    );
    h.finish().await;
}

async fn audit_records_and_resolves_violations_and_prune_keeps_recent_rows(h: Harness) {
    seed(
        &h,
        SeedOptions {
            tenants: 30,
            ..SeedOptions::default()
        },
    )
    .await;
    let c = ctx(&h.rt);
    let (audited, found) = tasks::audit::audit(&c, None, |_| {}).await.unwrap();
    assert_eq!(audited, 30);
    let open = tenants::violations(&h.db, false).await.unwrap();
    assert_eq!(open.len() as u64, found, "[{}]", h.name);
    assert!(found > 0);
    assert!(open.iter().all(|v| v.used > v.limit));
    // Fix one tenant's staff count; the next audit resolves that violation only.
    let v = open.iter().find(|v| v.resource == "staff").unwrap();
    h.db.query("UPDATE tenants SET staff_count = 0 WHERE id = ?")
        .bind(v.tenant_id)
        .execute(&h.db)
        .await
        .unwrap();
    h.clock.advance(TimeDelta::hours(1));
    tasks::audit::audit(&c, None, |_| {}).await.unwrap();
    let all = tenants::violations(&h.db, true).await.unwrap();
    let fixed = all
        .iter()
        .find(|x| x.tenant_id == v.tenant_id && x.resource == "staff")
        .unwrap();
    assert_eq!(fixed.resolved_at, Some(h.now()));
    assert_eq!(
        tenants::violations(&h.db, false).await.unwrap().len() as u64,
        found - 1
    );

    // Prune: processed outbox rows older than 7 days go, newer and unprocessed ones stay.
    insert_events(&h.db, 3, "AppointmentReminderDue", h.now()).await;
    tasks::outbox::process(&h.rt, 10, Some(2), |_| {})
        .await
        .unwrap();
    h.clock.advance(TimeDelta::days(8));
    insert_events(&h.db, 1, "AppointmentReminderDue", h.now()).await;
    tasks::outbox::process(&h.rt, 10, None, |_| {})
        .await
        .unwrap();
    let deleted = tasks::prune::prune_target(&c, conecta::store::prune::Target::Outbox, 7)
        .await
        .unwrap();
    assert_eq!(deleted, 2, "the two processed 8 days ago");
    assert_eq!(
        scalar(&h.db, "SELECT COUNT(*) FROM outbox_messages").await,
        2
    );
    h.finish().await;
}

/// PostgreSQL releases an order in one statement that builds the `OrderCancelled` payload in
/// SQL; SQLite and MariaDB build it in Rust. Both must write the same event, item order and
/// summed quantities included.
async fn order_cancelled_payload_is_the_same_on_every_database(h: Harness) {
    use conecta::store::orders::{self, StaleOrder};
    let db = &h.db;
    let t = h.now().timestamp() - 3_600;
    db.query("INSERT INTO products (id, tenant_id, name, price_cents, stock_quantity, created_at) VALUES (7, 1, 'b', 100, 10, ?), (3, 1, 'a', 250, 0, ?)")
        .bind(t)
        .bind(t)
        .execute(db)
        .await
        .unwrap();
    db.query("INSERT INTO orders (id, tenant_id, status, customer_email, total_cents, created_at, updated_at) VALUES (41, 1, 'pending', 'ana@example.test', 950, ?, ?)")
        .bind(t)
        .bind(t)
        .execute(db)
        .await
        .unwrap();
    db.query("INSERT INTO order_items (order_id, product_id, quantity, price_cents) VALUES (41, 7, 2, 100), (41, 3, 1, 250), (41, 7, 3, 100)")
        .execute(db)
        .await
        .unwrap();
    let order = StaleOrder {
        id: 41,
        tenant_id: 1,
        customer_email: "ana@example.test".into(),
        total_cents: 950,
        created_at: t,
    };
    assert!(orders::release(db, &order, h.now()).await.unwrap());
    assert!(
        !orders::release(db, &order, h.now()).await.unwrap(),
        "released once"
    );
    let messages = outbox::range(db, 0, i64::MAX).await.unwrap();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(
        (
            m.event_type.as_str(),
            m.aggregate_type.as_str(),
            m.aggregate_id.as_str()
        ),
        ("OrderCancelled", "order", "41")
    );
    let payload: serde_json::Value = serde_json::from_str(&m.payload).unwrap();
    assert_eq!(
        payload,
        json!({
            "order_id": 41,
            "tenant_id": 1,
            "customer_email": "ana@example.test",
            "total_cents": 950,
            "reason": "stale",
            "restored": [
                {"product_id": 3, "quantity": 1},
                {"product_id": 7, "quantity": 5},
            ],
        })
    );
    assert_eq!(
        scalar(db, "SELECT stock_quantity FROM products WHERE id = 7").await,
        15
    );
}

on_databases!(two_concurrent_release_stale_runs_release_each_order_once);
on_databases!(order_cancelled_payload_is_the_same_on_every_database);
on_databases!(two_outbox_processors_never_publish_a_row_twice);
on_databases!(a_failing_publish_records_its_error_and_backs_off);
on_databases!(reminders_go_out_once_and_reach_back_after_downtime);
on_databases!(analytics_fan_out_is_unique_per_date_and_upserts);
on_databases!(audit_records_and_resolves_violations_and_prune_keeps_recent_rows);

/// With `CONECTA_OUTBOX_STREAM` set, every published message is also added to that Redis
/// stream, with its id and event type, for consumers outside conecta.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_messages_are_also_added_to_the_redis_stream() {
    let Some(url) = crate::support::service_url("CONECTA_TEST_REDIS_URL") else {
        return;
    };
    let Some(mut h) = crate::support::harness("sqlite").await else {
        return;
    };
    let stream = format!("conecta-test:{}:outbox", uuid::Uuid::new_v4().simple());
    h.rt.settings = std::sync::Arc::new(conecta::settings::Settings {
        outbox_stream: Some(stream.clone()),
        redis_url: url.clone(),
        ..conecta::settings::Settings::default()
    });
    insert_events(&h.db, 25, "AppointmentReminderDue", h.now()).await;
    let r = tasks::outbox::process(&h.rt, 10, None, |_| {})
        .await
        .unwrap();
    assert_eq!(r.published, 25);
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let len: i64 = redis::cmd("XLEN")
        .arg(&stream)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(len, 25);
    let first: redis::Value = redis::cmd("XRANGE")
        .arg(&stream)
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();
    let text = format!("{first:?}");
    assert!(text.contains("AppointmentReminderDue"), "{text}");
    let _: () = redis::cmd("DEL")
        .arg(&stream)
        .query_async(&mut conn)
        .await
        .unwrap();
    h.finish().await;
}
