//! Scheduler fire latency and idle memory. Run with `cargo bench --bench scheduler`; prints
//! `RESULT key=value` lines.
//!
//! Fire latency: cron has minute resolution, so instead of a per-second schedule the real
//! scheduler loop runs on a clock 600 times faster than real time over 200 every-minute
//! occurrences (20 real seconds). The sleep before each occurrence is a real timer of about
//! 100 ms; the latency of each run (due instant to task start, as recorded in schedule_runs)
//! is divided by 600 to give real milliseconds. Idle RSS: a real `conecta scheduler` process
//! on the production schedule, read from /proc after it settles. `every = "1s"`: a minute at
//! real speed, the latency of each firing and the process's CPU over the minute.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use conecta::clock::SimulatedClock;
use conecta::queue::Runtime;
use conecta::queue::database::DatabaseQueue;
use conecta::schedule::{file, scheduler};
use conecta::stop::{StopHandle, StopReason};
use conecta::store::{Db, schedule_runs};

const SPEED: f64 = 600.0;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let db = Db::connect(
            &format!("sqlite:{}", dir.path().join("b.sqlite").display()),
            4,
        )
        .await
        .unwrap();
        db.migrate().await.unwrap();
        let start: DateTime<Utc> = "2026-11-27T10:00:50Z".parse().unwrap();
        let clock = Arc::new(SimulatedClock::new(start, SPEED));
        let runtime = Runtime::new(
            Arc::new(DatabaseQueue::new(db.clone(), Duration::from_secs(90))),
            db.clone(),
            Arc::new(conecta::tasks::registry()),
            clock.clone(),
        );
        let text = "[[task]]\nname = \"tick\"\ntask = \"diagnostics:noop\"\ncron = \"* * * * *\"\n";
        let schedule = Arc::new(file::parse("b.toml".as_ref(), text, Tz::UTC).unwrap());
        let stop = StopHandle::default();
        let looping = tokio::spawn(scheduler::run(schedule, runtime, stop.clone(), None));
        // 200 occurrences at 600x: 10:01 ... 13:20 simulated, 20 s real.
        tokio::time::sleep(Duration::from_secs_f64(201.0 * 60.0 / SPEED)).await;
        stop.stop(StopReason::Signal);
        looping.await.unwrap().unwrap();
        let runs = schedule_runs::history(&db, Some("tick"), 1000)
            .await
            .unwrap();
        let mut real_ms: Vec<f64> = runs
            .iter()
            .filter_map(|r| {
                r.started_at
                    .map(|s| (s - r.due_at).num_microseconds().unwrap() as f64 / 1000.0 / SPEED)
            })
            .collect();
        real_ms.sort_by(|a, b| a.total_cmp(b));
        println!(
            "RESULT bench=fire_latency occurrences={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
            real_ms.len(),
            percentile(&real_ms, 0.5),
            percentile(&real_ms, 0.99),
            real_ms.last().unwrap()
        );
    });

    // `every = "1s"` at real speed: 60 firings, latency per firing and the CPU the process
    // spent over the minute (it sleeps between firings).
    rt.block_on(async {
        let db = Db::connect(
            &format!("sqlite:{}", dir.path().join("e.sqlite").display()),
            4,
        )
        .await
        .unwrap();
        db.migrate().await.unwrap();
        let start: DateTime<Utc> = "2026-11-27T10:00:00.500Z".parse().unwrap();
        let clock = Arc::new(SimulatedClock::new(start, 1.0));
        let runtime = Runtime::new(
            Arc::new(DatabaseQueue::new(db.clone(), Duration::from_secs(90))),
            db.clone(),
            Arc::new(conecta::tasks::registry()),
            clock.clone(),
        );
        let text = "[[task]]\nname = \"tick\"\ntask = \"diagnostics:noop\"\nevery = \"1s\"\n";
        let schedule = Arc::new(file::parse("e.toml".as_ref(), text, Tz::UTC).unwrap());
        let stop = StopHandle::default();
        let cpu_before = cpu_seconds();
        let looping = tokio::spawn(scheduler::run(schedule, runtime, stop.clone(), None));
        tokio::time::sleep(Duration::from_secs(61)).await;
        stop.stop(StopReason::Signal);
        looping.await.unwrap().unwrap();
        let cpu = cpu_seconds() - cpu_before;
        let runs = schedule_runs::history(&db, Some("tick"), 1000)
            .await
            .unwrap();
        let mut ms: Vec<f64> = runs
            .iter()
            .filter_map(|r| {
                r.started_at
                    .map(|s| (s - r.due_at).num_microseconds().unwrap() as f64 / 1000.0)
            })
            .collect();
        ms.sort_by(|a, b| a.total_cmp(b));
        println!(
            "RESULT bench=every_1s_fire_latency firings={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} cpu_percent={:.2}",
            ms.len(),
            percentile(&ms, 0.5),
            percentile(&ms, 0.99),
            ms.last().unwrap(),
            cpu / 61.0 * 100.0
        );
    });

    // Idle RSS of a real scheduler process on the production schedule.
    let root = env!("CARGO_MANIFEST_DIR");
    let mut child = Command::new(env!("CARGO_BIN_EXE_conecta"))
        .current_dir(dir.path())
        .env(
            "DATABASE_URL",
            format!("sqlite:{}", dir.path().join("idle.sqlite").display()),
        )
        .args([
            "--schedule",
            &format!("{root}/schedules/production.toml"),
            "scheduler",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let rss_kb: u64 = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "RESULT bench=idle_scheduler_rss rss_mb={:.1}",
        rss_kb as f64 / 1024.0
    );
}

/// User plus system CPU seconds this process has used (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command name.
    (ticks(11) + ticks(12)) / 100.0
}
