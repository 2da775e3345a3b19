//! `conecta bench enqueue|drain|unique|latency|all`: the standard workloads against the
//! configured queue, one `RESULT key=value …` line per figure on stdout.
//!
//! Everything runs on a queue of its own (`bench`) and unique keys under `bench:`, which are
//! cleared before and after, so a benchmark never touches real jobs or real locks. Drain and
//! latency run a real `conecta worker` process, as production does. The task workloads
//! (`fan-out`, `release-stale`, `outbox`) live in `bench_tasks.rs`.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::args::{BenchArgs, Workload};
use super::{Context, ExitStatus};
use crate::clock::Stopwatch;
use crate::queue::{Enqueued, NewJob, Runtime, UniqueUntil};

const QUEUE: &str = "bench";
const LOCKS: &str = "bench:";

fn job(i: u64) -> NewJob {
    NewJob::new(
        "diagnostics:noop",
        json!({ "tenant_id": i, "date": "2026-11-27" }),
    )
    .on(QUEUE)
}

pub async fn run(
    ctx: &Context,
    args: &BenchArgs,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let rt = ctx.bench_runtime(args).await?;
    rt.queue.clear(QUEUE, LOCKS).await?;
    let all = args.workload == Workload::All;
    if all || args.workload == Workload::Enqueue {
        enqueue(&rt, args, out).await?;
        rt.queue.clear(QUEUE, LOCKS).await?;
    }
    if all || args.workload == Workload::Drain {
        let levels = match args.concurrency {
            Some(c) => vec![c],
            None => vec![1, 50],
        };
        for c in levels {
            drain(&rt, args, c, out).await?;
            rt.queue.clear(QUEUE, LOCKS).await?;
        }
    }
    if all || args.workload == Workload::Unique {
        unique(&rt, args, out).await?;
        rt.queue.clear(QUEUE, LOCKS).await?;
    }
    if all || args.workload == Workload::Latency {
        latency(&rt, args, out).await?;
        rt.queue.clear(QUEUE, LOCKS).await?;
    }
    Ok(ExitStatus::Success)
}

async fn fill(
    rt: &Runtime,
    jobs: u64,
    chunk: usize,
    make: impl Fn(u64) -> NewJob,
) -> anyhow::Result<usize> {
    let mut duplicates = 0;
    let mut i = 0;
    while i < jobs {
        let end = (i + chunk as u64).min(jobs);
        let part: Vec<NewJob> = (i..end).map(&make).collect();
        let answers = rt.queue.enqueue_bulk(part, rt.clock.now()).await?;
        duplicates += answers.iter().filter(|a| a.is_duplicate()).count();
        i = end;
    }
    Ok(duplicates)
}

async fn enqueue(rt: &Runtime, args: &BenchArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let jobs = args.jobs.unwrap_or(100_000);
    let watch = Stopwatch::start();
    fill(rt, jobs, args.chunk, job).await?;
    let secs = watch.elapsed().as_secs_f64();
    writeln!(
        out,
        "RESULT workload=enqueue connection={} jobs={jobs} chunk={} seconds={secs:.3} jobs_per_sec={:.0}",
        rt.queue.connection(),
        args.chunk,
        jobs as f64 / secs
    )?;
    out.flush()?;
    Ok(())
}

fn worker_command(extra: &[&str]) -> anyhow::Result<tokio::process::Command> {
    let exe = std::env::current_exe()?;
    let mut cmd = tokio::process::Command::new(exe);
    if let Some(env_file) = std::env::args().skip_while(|a| a != "--env-file").nth(1) {
        cmd.arg("--env-file").arg(env_file);
    }
    cmd.args([
        "--log-format",
        "json",
        "worker",
        "--queue",
        QUEUE,
        "--memory",
        "0",
    ])
    .args(extra)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    Ok(cmd)
}

async fn drain(
    rt: &Runtime,
    args: &BenchArgs,
    concurrency: usize,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let jobs = args.jobs.unwrap_or(100_000);
    fill(rt, jobs, args.chunk, job).await?;
    let c = concurrency.to_string();
    let mut cmd = worker_command(&["--concurrency", &c, "--stop-when-empty", "--sleep", "0.1"])?;
    let watch = Stopwatch::start();
    let child = cmd.spawn()?;
    let output = child.wait_with_output().await?;
    let secs = watch.elapsed().as_secs_f64();
    let log = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        anyhow::bail!("the bench worker failed ({}):\n{log}", output.status);
    }
    let peak_kb = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v.get("peak_rss_kb").and_then(|p| p.as_u64()))
        .unwrap_or(0);
    let left = rt.jobs_in(QUEUE).await?;
    writeln!(
        out,
        "RESULT workload=drain connection={} concurrency={concurrency} jobs={jobs} seconds={secs:.3} jobs_per_sec={:.0} peak_rss_mb={:.1} left={left}",
        rt.queue.connection(),
        jobs as f64 / secs,
        peak_kb as f64 / 1024.0
    )?;
    out.flush()?;
    Ok(())
}

async fn unique(rt: &Runtime, args: &BenchArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let jobs = args.jobs.unwrap_or(10_000);
    let make = |i: u64| {
        job(i).unique(
            format!("{LOCKS}sync-analytics:{i}:2026-11-27"),
            3600,
            UniqueUntil::Processed,
        )
    };
    let watch = Stopwatch::start();
    let dup1 = fill(rt, jobs, args.chunk, make).await?;
    let pass1 = watch.elapsed().as_secs_f64();
    let watch = Stopwatch::start();
    let dup2 = fill(rt, jobs, args.chunk, make).await?;
    let pass2 = watch.elapsed().as_secs_f64();
    let existing = rt.jobs_in(QUEUE).await?;
    writeln!(
        out,
        "RESULT workload=unique connection={} jobs={jobs} pass1_seconds={pass1:.4} pass2_seconds={pass2:.4} pass1_duplicates={dup1} pass2_duplicates={dup2} existing_after_pass2={existing}",
        rt.queue.connection()
    )?;
    out.flush()?;
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn latency(rt: &Runtime, args: &BenchArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let jobs = args.jobs.unwrap_or(2_000);
    // A blocking driver wakes on a notification; a polling one on its --sleep.
    let sleep = if rt.queue.wakes_idle_workers() {
        "1"
    } else {
        "0.01"
    };
    let mut cmd = worker_command(&["--concurrency", "1", "--sleep", sleep])?;
    cmd.env("RUST_LOG", "conecta=debug");
    let mut child = cmd.spawn()?;
    let pid = child.id().unwrap_or(0);
    let stderr = child.stderr.take().expect("piped");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, i64)>();
    let reader = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && let (Some(uuid), Some(at)) = (
                    v.get("uuid").and_then(|u| u.as_str()),
                    v.get("started_at_us").and_then(|s| s.as_i64()),
                )
            {
                let _ = tx.send((uuid.to_string(), at));
            }
        }
    });
    // Let the worker start and settle, then read its idle memory.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let idle_rss_kb = crate::queue::worker::rss_kb_of(pid);
    let mut sent = std::collections::HashMap::new();
    let interval = Duration::from_micros(1_000_000 / 200);
    let mut ticker = tokio::time::interval(interval);
    for i in 0..jobs {
        ticker.tick().await;
        let at = rt.clock.now().timestamp_micros();
        if let Enqueued::Job(uuid) = rt.queue.enqueue(job(i), rt.clock.now()).await? {
            sent.insert(uuid, at);
        }
    }
    let mut latencies = Vec::with_capacity(jobs as usize);
    let waiting = Stopwatch::start();
    let patience = Duration::from_secs(30);
    while latencies.len() < sent.len() {
        let left = patience.saturating_sub(waiting.elapsed());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some((uuid, started))) => {
                if let Some(at) = sent.get(&uuid) {
                    latencies.push((started - at) as f64 / 1000.0);
                }
            }
            _ => break,
        }
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
    reader.abort();
    latencies.sort_by(|a, b| a.total_cmp(b));
    writeln!(
        out,
        "RESULT workload=latency connection={} jobs={jobs} started={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} idle_worker_rss_mb={:.1}",
        rt.queue.connection(),
        latencies.len(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0),
        idle_rss_kb as f64 / 1024.0
    )?;
    out.flush()?;
    Ok(())
}
