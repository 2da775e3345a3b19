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
        Workload::Export => export(rt, args, out).await,
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

/// Resets the process's peak RSS (Linux: writing 5 to `clear_refs`), so the next reading of
/// `VmHWM` is the peak of what follows.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

async fn export(rt: &Runtime, args: &BenchArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    use crate::tasks::exports::{self, Format};
    let lines = args.jobs.unwrap_or(1_000_000) as i64;
    let orders = (lines / 2).max(1);
    let now = rt.clock.now().timestamp();
    insert_rows(
        &rt.db,
        &demo::TENANTS,
        &[vec![
            Cell::Int(1),
            Cell::Text("Tienda Bench".into()),
            Cell::Text("approved".into()),
            Cell::Int(1),
            Cell::Text("America/Tegucigalpa".into()),
            Cell::Text("owner1@example.test".into()),
            Cell::Int(1),
            Cell::Int(10),
            Cell::Int(now),
        ]],
    )
    .await?;
    let products: Vec<Vec<Cell>> = (1..=1000)
        .map(|id| {
            vec![
                Cell::Int(id),
                Cell::Int(1),
                Cell::Text(format!("Producto {id}")),
                Cell::Int(1000 + id),
                Cell::Int(100),
                Cell::Null,
                Cell::Null,
                Cell::Int(now),
            ]
        })
        .collect();
    insert_rows(&rt.db, &demo::PRODUCTS, &products).await?;
    // Two items per order, the orders spread over the last 30 days.
    let mut start = 1;
    while start <= orders {
        let end = (start + 24_999).min(orders);
        let mut o = Vec::new();
        let mut items = Vec::new();
        for id in start..=end {
            let at = now - 60 - (id * 2_592_000 / orders);
            o.push(vec![
                Cell::Int(id),
                Cell::Int(1),
                Cell::Text(if id % 4 == 0 { "pending" } else { "paid" }.into()),
                Cell::Text(format!("cliente{id}@example.test")),
                Cell::Int(3_000),
                Cell::Int(at),
                Cell::Int(at),
                Cell::Null,
            ]);
            for k in 0..2 {
                items.push(vec![
                    Cell::Int(id * 2 - 1 + k),
                    Cell::Int(id),
                    Cell::Int(1 + (id * 7 + k) % 1000),
                    Cell::Int(1 + k),
                    Cell::Int(1_000),
                ]);
            }
        }
        insert_rows(&rt.db, &demo::ORDERS, &o).await?;
        insert_rows(&rt.db, &demo::ORDER_ITEMS, &items).await?;
        start = end + 1;
    }
    demo::analyze(&rt.db, &["orders", "order_items", "products"]).await?;
    let zone: chrono_tz::Tz = "America/Tegucigalpa".parse()?;
    let today = rt.clock.now().with_timezone(&zone).date_naive();
    let from = today - chrono::Days::new(40);
    let dir = tempfile_dir()?;
    for format in [Format::Csv, Format::Xlsx] {
        reset_peak_rss();
        let watch = Stopwatch::start();
        let w = exports::write(&rt.db, &dir, 1, zone, (from, today), format).await?;
        let secs = watch.elapsed().as_secs_f64();
        let bytes = std::fs::metadata(&w.path)?.len();
        writeln!(
            out,
            "RESULT workload=export database={:?} format={} rows={} seconds={secs:.2} rows_per_sec={:.0} file_mb={:.1} peak_rss_mb={:.1}",
            rt.db.backend(),
            format.extension(),
            w.rows,
            w.rows as f64 / secs,
            bytes as f64 / 1_048_576.0,
            crate::queue::worker::peak_rss_kb() as f64 / 1024.0
        )?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("conecta-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A photo-like test picture: gradients and fine noise, so JPEG has detail to code.
fn picture(width: u32, height: u32) -> image::RgbImage {
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    image::RgbImage::from_fn(width, height, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let n = (seed & 31) as u32;
        image::Rgb([
            ((x * 200 / width) + n) as u8,
            ((y * 200 / height) + n) as u8,
            (((x + y) * 100 / (width + height)) + n) as u8,
        ])
    })
}

/// `bench blurhash`: time per 4000×3000 JPEG through the job's decode and hash, and the peak
/// RSS of decoding an 8000×6000 one.
pub fn blurhash(args: &BenchArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let runs = args.jobs.unwrap_or(20).clamp(1, 1_000) as usize;
    let dir = tempfile_dir()?;
    let write_jpeg = |w: u32, h: u32, name: &str| -> anyhow::Result<std::path::PathBuf> {
        let path = dir.join(name);
        let file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        image::codecs::jpeg::JpegEncoder::new_with_quality(file, 85)
            .encode_image(&picture(w, h))?;
        Ok(path)
    };
    let medium = write_jpeg(4000, 3000, "4000x3000.jpg")?;
    let huge = write_jpeg(8000, 6000, "8000x6000.jpg")?;
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let watch = Stopwatch::start();
        tasks::blurhash::hash_file(&medium)?;
        ms.push(watch.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    reset_peak_rss();
    let before = crate::queue::worker::peak_rss_kb();
    tasks::blurhash::hash_file(&huge)?;
    let huge_peak = crate::queue::worker::peak_rss_kb();
    writeln!(
        out,
        "RESULT workload=blurhash image=4000x3000 runs={runs} p50_ms={:.1} max_ms={:.1} huge=8000x6000 peak_rss_mb={:.1} rss_before_mb={:.1}",
        ms[runs / 2],
        ms[runs - 1],
        huge_peak as f64 / 1024.0,
        before as f64 / 1024.0
    )?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ExitStatus::Success)
}
