//! What the long-running commands (`worker`, `scheduler`, `start`) share: the `--concurrency`
//! bound, the SIGTERM/SIGINT listener that stops them gracefully, the SIGHUP listener that
//! reloads the schedule, and the start-up announcement of what is scheduled. Command files
//! import from here, never from each other.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Context, UsageError};
use crate::schedule::{Schedule, file};
use crate::stop::{StopHandle, StopReason};

/// The most jobs one process runs at once.
pub const MAX_CONCURRENCY: usize = 1000;

/// `--concurrency` must be from 1 to [`MAX_CONCURRENCY`].
pub fn check_concurrency(n: usize) -> Result<(), UsageError> {
    if (1..=MAX_CONCURRENCY).contains(&n) {
        Ok(())
    } else {
        Err(UsageError::new(
            format!("--concurrency must be from 1 to {MAX_CONCURRENCY}, got: {n}"),
            Some("run more worker processes for more parallelism".to_string()),
        ))
    }
}

/// SIGTERM and SIGINT stop the daemon gracefully: the work in hand finishes first.
pub fn spawn_signal_listener(stop: StopHandle) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot listen for SIGTERM/SIGINT");
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: finishing the jobs in hand"),
            _ = int.recv() => tracing::info!("SIGINT: finishing the jobs in hand"),
        }
        stop.stop(StopReason::Signal);
    });
}

/// Logs each enabled entry with its next due time, so a fresh start shows what will happen.
pub fn announce(ctx: &Context, schedule: &Schedule) {
    for entry in schedule.enabled() {
        let next = crate::schedule::occurrences(
            entry,
            ctx.clock.now(),
            ctx.clock.now() + crate::schedule::NEXT_HORIZON,
        )
        .next();
        match next {
            Some(o) => {
                tracing::info!(entry = %entry.name, cron = entry.cron.as_str(), next_due = %crate::rfc3339::utc(o.due), "entry")
            }
            None => tracing::warn!(entry = %entry.name, "entry is never due"),
        }
    }
}

/// SIGHUP reloads the schedule file; an invalid file is logged problem by problem and the
/// running schedule stays.
pub fn spawn_reload_listener(ctx: &Context, tx: tokio::sync::watch::Sender<Arc<Schedule>>) {
    let path = ctx.schedule_path.clone();
    let zone = ctx.config.app_timezone;
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::error!("cannot listen for SIGHUP; reload by restarting");
            return;
        };
        while hup.recv().await.is_some() {
            match file::load(&path, zone) {
                Ok(new) => {
                    tracing::info!(hash = %new.hash, entries = new.enabled().count(), "SIGHUP: schedule reloaded");
                    tx.send_replace(Arc::new(new));
                }
                Err(file::LoadError::Invalid(invalid)) => {
                    for d in &invalid.diagnostics {
                        tracing::error!(
                            "{}:{}:{}: {}",
                            invalid.path.display(),
                            d.line,
                            d.col,
                            d.message
                        );
                    }
                    tracing::error!("SIGHUP: the new schedule is invalid; keeping the running one");
                }
                Err(e) => tracing::error!("SIGHUP: {e}; keeping the running schedule"),
            }
        }
    });
}

/// Binds the HTTP port of `CONECTA_HTTP_ADDR` and serves on it until `stop`, in the
/// background; warns about each route disabled for want of a secret.
pub async fn spawn_http(
    ctx: &Context,
    rt: crate::queue::Runtime,
    schedule: Option<tokio::sync::watch::Receiver<Arc<Schedule>>>,
    stop: StopHandle,
) -> anyhow::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let http = ctx.config.http.clone();
    let listener = tokio::net::TcpListener::bind(http.addr)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {} ({e}): set CONECTA_HTTP_ADDR to a free address{}",
                http.addr,
                " or pass --no-http to `start`"
            )
        })?;
    let addr = listener.local_addr().unwrap_or(http.addr);
    crate::http::warn_disabled(&http);
    if http.ui_password.is_some() || http.api_token.is_some() {
        tracing::info!(%addr, "HTTP server listening; the dashboard is http://{addr}/ui");
    } else {
        tracing::info!(%addr, "HTTP server listening");
    }
    let mut state = crate::http::AppState::new(rt, http, None);
    if let Some(schedules) = schedule {
        state = state.following(schedules);
    }
    let state = Arc::new(state);
    Ok(tokio::spawn(crate::http::serve(listener, state, stop)))
}

/// `--until T`: checked against the clock's start, so a rehearsal window is never empty or
/// backwards.
pub fn until_arg(ctx: &Context, until: Option<&str>) -> Result<Option<DateTime<Utc>>, UsageError> {
    let Some(text) = until else { return Ok(None) };
    let at = super::instant_arg("--until", text)?;
    let now = ctx.clock.now();
    if at <= now {
        return Err(UsageError::new(
            format!(
                "--until ({}) is not after the clock's start ({})",
                crate::rfc3339::utc(at),
                crate::rfc3339::utc(now)
            ),
            Some("give --now T0 and an --until after it, e.g. --now 2026-03-07T00:00:00Z --until 2026-03-08T00:00:00Z".into()),
        ));
    }
    Ok(Some(at))
}

/// Stops `stop` (reason `--until`) when the clock reaches `until`.
pub fn spawn_until(clock: crate::clock::SharedClock, until: DateTime<Utc>, stop: StopHandle) {
    stop.stop_at(until);
    tokio::spawn(async move {
        tokio::select! {
            _ = clock.sleep_until(until) => {
                tracing::info!(until = %crate::rfc3339::utc(until), "--until reached: finishing the work in hand");
                stop.stop(StopReason::Until);
            }
            _ = stop.stopped() => {}
        }
    });
}

/// Waits until `queues` hold no job that is ready or reserved (delayed ones are past the
/// rehearsal), or `stop` is stopped.
pub async fn wait_until_drained(rt: &crate::queue::Runtime, queues: &[String], stop: &StopHandle) {
    loop {
        let busy = match rt.queue.depths(rt.clock.now()).await {
            Ok(depths) => depths
                .iter()
                .filter(|d| queues.contains(&d.queue))
                .any(|d| d.pending + d.reserved > 0),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the queue depth; waiting");
                true
            }
        };
        if !busy {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
            _ = stop.stopped() => return,
        }
    }
}

/// The rehearsal's summary of `[from, to)`: per entry its planned occurrences and the
/// outcomes recorded, and the jobs this process finished per job name. Exit 1 when a run or
/// a job failed.
pub async fn rehearsal_summary(
    rt: &crate::queue::Runtime,
    schedule: &Schedule,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<super::ExitStatus> {
    let tally = crate::store::schedule_runs::tally(&rt.db, from, to).await?;
    let count = |entry: &str, outcomes: &[&str]| -> i64 {
        tally
            .iter()
            .filter(|(e, o, _)| e == entry && outcomes.contains(&o.as_str()))
            .map(|(_, _, n)| n)
            .sum()
    };
    let mut failed = 0;
    let mut rows = Vec::new();
    for entry in schedule.enabled() {
        let planned = crate::schedule::occurrences(entry, from, to).count();
        let bad = count(&entry.name, &["failed", "timed_out"]);
        failed += bad;
        rows.push(vec![
            entry.name.clone(),
            planned.to_string(),
            count(&entry.name, &["succeeded"]).to_string(),
            bad.to_string(),
            count(&entry.name, &["skipped_overlap"]).to_string(),
            count(&entry.name, &["missed"]).to_string(),
            count(&entry.name, &["running"]).to_string(),
        ]);
    }
    writeln!(
        out,
        "Rehearsal of [{}, {}):",
        crate::rfc3339::utc(from),
        crate::rfc3339::utc(to)
    )?;
    super::output::table(
        out,
        &[
            "ENTRY",
            "OCCURRENCES",
            "SUCCEEDED",
            "FAILED",
            "SKIPPED",
            "MISSED",
            "UNFINISHED",
        ],
        &rows,
    )?;
    let mut jobs: std::collections::BTreeMap<String, (u64, u64, u64)> = Default::default();
    for ((_, name, outcome), n) in rt.metrics.job_tally() {
        let row = jobs.entry(name).or_default();
        match outcome {
            "failed" => row.1 += n,
            "released" => row.2 += n,
            _ => row.0 += n,
        }
    }
    if !jobs.is_empty() {
        writeln!(out)?;
        let rows: Vec<Vec<String>> = jobs
            .iter()
            .map(|(name, (done, bad, retried))| {
                vec![
                    name.clone(),
                    done.to_string(),
                    bad.to_string(),
                    retried.to_string(),
                ]
            })
            .collect();
        super::output::table(out, &["JOB", "PROCESSED", "FAILED", "RETRIED"], &rows)?;
    }
    let failed_jobs: u64 = jobs.values().map(|(_, bad, _)| bad).sum();
    let status = if failed > 0 || failed_jobs > 0 {
        writeln!(
            out,
            "\n{failed} run(s) and {failed_jobs} job(s) failed: exit 1 (`conecta schedule history` and `conecta queue failed` show why)"
        )?;
        super::ExitStatus::Failure
    } else {
        writeln!(out, "\nNo run and no job failed.")?;
        super::ExitStatus::Success
    };
    out.flush()?;
    Ok(status)
}
