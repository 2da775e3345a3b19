//! `conecta bench fan-out|release-stale|outbox`: the task workloads of issue 5, on generated
//! data, printing one `RESULT key=value …` line each.
//!
//! They write business rows, so they refuse to run unless the database has no tenants, orders
//! or outbox messages and the `default` queue is empty: point them at a scratch database. What
//! they create is removed afterwards.

use std::io::Write;

use chrono::TimeDelta;
use serde_json::json;

use super::args::{BenchArgs, Workload};
use super::{Context, ExitStatus, UsageError};
use crate::clock::Stopwatch;
use crate::queue::Runtime;
use crate::store::demo::{self, Cell, insert_rows, sync_sequence};
use crate::tasks;

const TABLES: [&str; 5] = [
    "tenants",
    "products",
    "orders",
    "order_items",
    "outbox_messages",
];

pub async fn run(
    ctx: &Context,
    args: &BenchArgs,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let rt = &ctx.bench_runtime(args).await?;
    for table in TABLES {
        if demo::row_count(&rt.db, table).await? > 0 {
            return Err(UsageError::new(
                format!("the database already has rows in {table}; this benchmark writes and then deletes business rows"),
                Some("point DATABASE_URL at a scratch database".to_string()),
            )
            .into());
        }
    }
    if rt.jobs_in("default").await? > 0 {
        return Err(UsageError::new(
            "the default queue is not empty; this benchmark enqueues onto it and clears it",
            Some("use a scratch Redis prefix (REDIS_PREFIX) or database".to_string()),
        )
        .into());
    }
    let result = match args.workload {
        Workload::FanOut => fan_out(rt, args, out).await,
        Workload::ReleaseStale => release_stale(rt, args, out).await,
        _ => outbox(rt, args, out).await,
    };
    rt.queue.clear("default", "analytics:").await?;
    demo::empty(&rt.db, &TABLES).await?;
    result.map(|()| ExitStatus::Success)
}

async fn fan_out(rt: &Runtime, args: &BenchArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let n = args.jobs.unwrap_or(100_000) as i64;
    let now = rt.clock.now().timestamp();
    let rows: Vec<Vec<Cell>> = (1..=n)
        .map(|id| {
            vec![
                Cell::Int(id),
                Cell::Text(format!("Tienda {id}")),
                Cell::Text("approved".into()),
                Cell::Int(1),
                Cell::Text("America/Tegucigalpa".into()),
                Cell::Text(format!("owner{id}@example.test")),
                Cell::Int(1),
                Cell::Int(10),
                Cell::Int(now),
            ]
        })
        .collect();
    insert_rows(&rt.db, &demo::TENANTS, &rows).await?;
    sync_sequence(&rt.db, "tenants").await?;
    let ctx = rt.context("bench".into(), 1, "inline");
    let date = "2026-11-27".parse()?;
    let watch = Stopwatch::start();
    let report = tasks::analytics::sync(&ctx, date, args.chunk as u64, None).await?;
    let secs = watch.elapsed().as_secs_f64();
    writeln!(
        out,
        "RESULT workload=fan-out connection={} tenants={n} enqueued={} chunk={} seconds={secs:.3} jobs_per_sec={:.0}",
        rt.queue.connection(),
        report.enqueued,
        args.chunk,
        report.enqueued as f64 / secs
    )?;
    Ok(())
}

async fn release_stale(rt: &Runtime, args: &BenchArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let n = args.jobs.unwrap_or(1_000_000) as i64;
    let stale = (args.stale as i64).min(n);
    let now = rt.clock.now().timestamp();
    insert_rows(
        &rt.db,
        &demo::PRODUCTS,
        &(1..=1000)
            .map(|id| {
                vec![
                    Cell::Int(id),
                    Cell::Int(1 + id % 100),
                    Cell::Text(format!("P{id}")),
                    Cell::Int(1000),
                    Cell::Int(100),
                    Cell::Null,
                    Cell::Null,
                    Cell::Int(now),
                ]
            })
            .collect::<Vec<_>>(),
    )
    .await?;
    // Every `n / stale`-th order is pending and two hours old; the rest are paid, or pending
    // and fresh.
    let every = (n / stale.max(1)).max(1);
    let mut made_stale = 0;
    let mut start = 1;
    while start <= n {
        let end = (start + 49_999).min(n);
        let mut orders = Vec::new();
        let mut items = Vec::new();
        for id in start..=end {
            let is_stale = id % every == 0 && made_stale < stale;
            made_stale += i64::from(is_stale);
            let (status, age) = match (is_stale, id % 3) {
                (true, _) => ("pending", 7_200),
                (false, 0) => ("pending", 600),
                (false, _) => ("paid", 7_200),
            };
            orders.push(vec![
                Cell::Int(id),
                Cell::Int(1 + id % 100),
                Cell::Text(status.into()),
                Cell::Text(format!("c{id}@example.test")),
                Cell::Int(2_000),
                Cell::Int(now - age),
                Cell::Int(now - age),
                Cell::Null,
            ]);
            items.push(vec![
                Cell::Int(id),
                Cell::Int(id),
                Cell::Int(1 + id % 1000),
                Cell::Int(2),
                Cell::Int(1_000),
            ]);
        }
        insert_rows(&rt.db, &demo::ORDERS, &orders).await?;
        insert_rows(&rt.db, &demo::ORDER_ITEMS, &items).await?;
        start = end + 1;
    }
    for t in ["orders", "order_items", "products"] {
        sync_sequence(&rt.db, t).await?;
    }
    demo::analyze(&rt.db, &["orders", "order_items"]).await?;
    let ctx = rt.context("bench".into(), 1, "inline");
    let watch = Stopwatch::start();
    let report = tasks::orders::release_stale(&ctx, TimeDelta::minutes(30), None, |_| {}).await?;
    let secs = watch.elapsed().as_secs_f64();
    writeln!(
        out,
        "RESULT workload=release-stale database={:?} orders={n} stale={made_stale} released={} seconds={secs:.3} orders_per_sec={:.0}",
        rt.db.backend(),
        report.released,
        report.released as f64 / secs
    )?;
    Ok(())
}

async fn outbox(rt: &Runtime, args: &BenchArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let n = args.jobs.unwrap_or(100_000) as i64;
    let now = rt.clock.now().timestamp();
    let rows: Vec<Vec<Cell>> = (1..=n)
        .map(|id| {
            vec![
                Cell::Text("appointment".into()),
                Cell::Text(id.to_string()),
                Cell::Text("AppointmentReminderDue".into()),
                Cell::Text(
                    json!({"appointment_id": id, "tenant_id": 1, "customer_name": "Ana",
                           "customer_email": format!("c{id}@example.test"),
                           "starts_at": "2026-11-28T10:00:00Z"})
                    .to_string(),
                ),
                Cell::Int(now),
                Cell::Int(now),
                Cell::Int(0),
            ]
        })
        .collect();
    insert_rows(&rt.db, &demo::OUTBOX_MESSAGES, &rows).await?;
    let watch = Stopwatch::start();
    let report = tasks::outbox::process(rt, args.chunk as i64, None, |_| {}).await?;
    let secs = watch.elapsed().as_secs_f64();
    writeln!(
        out,
        "RESULT workload=outbox database={:?} connection={} messages={n} published={} batch={} seconds={secs:.3} messages_per_sec={:.0}",
        rt.db.backend(),
        rt.queue.connection(),
        report.published,
        args.chunk,
        report.published as f64 / secs
    )?;
    Ok(())
}
