//! `conecta start`: everything a single machine needs in one process: migrations, the
//! scheduler and a worker for `high,default`. On the embedded default (SQLite + database
//! queue) it needs no server. SIGTERM/SIGINT stop both after the work in hand; SIGHUP reloads
//! the schedule.

use std::sync::Arc;
use std::time::Duration;

use super::daemon::{
    announce, check_concurrency, rehearsal_summary, spawn_http, spawn_reload_listener,
    spawn_signal_listener, spawn_until, until_arg, wait_until_drained,
};
use super::{Context, ExitStatus};
use crate::queue::runtime::Defaults;
use crate::queue::worker::{self, WorkerOptions};
use crate::schedule::scheduler;
use crate::stop::{StopHandle, StopReason};

pub async fn run(
    ctx: &Context,
    concurrency: usize,
    http: bool,
    until: Option<&str>,
) -> anyhow::Result<ExitStatus> {
    check_concurrency(concurrency)?;
    let until = until_arg(ctx, until)?;
    let schedule = Arc::new(ctx.schedule()?);
    let from = ctx.started;
    let stop = StopHandle::default();
    spawn_signal_listener(stop.clone());
    // With --until the scheduler stops at that instant and the worker after the jobs ready by
    // then; a signal stops both.
    let scheduling = StopHandle::default();
    {
        let (stop, scheduling) = (stop.clone(), scheduling.clone());
        tokio::spawn(async move {
            stop.stopped().await;
            scheduling.stop(stop.reason());
        });
    }
    if let Some(t) = until {
        spawn_until(ctx.clock.clone(), t, scheduling.clone());
    }
    let Some(rt) = ctx.runtime_waiting(&stop, true).await? else {
        tracing::info!("stopped while waiting for a dependency");
        return Ok(ExitStatus::Success);
    };
    tracing::info!(
        connection = rt.queue.connection(),
        database = %super::redact(&ctx.config.database_url),
        schedule = %ctx.schedule_path.display(),
        "conecta started: scheduler and a worker for high,default"
    );
    announce(ctx, &schedule);
    // One schedule for the scheduler and the dashboard, replaced by SIGHUP.
    let (tx, rx) = tokio::sync::watch::channel(schedule.clone());
    spawn_reload_listener(ctx, tx);
    let server = if http {
        Some(spawn_http(ctx, rt.clone(), Some(rx.clone()), stop.clone()).await?)
    } else {
        None
    };
    let timeout = 60.min(ctx.config.retry_after.saturating_sub(1)).max(1);
    let opts = WorkerOptions {
        queues: vec!["high".into(), "default".into()],
        sleep: Duration::from_secs(1),
        defaults: Defaults {
            tries: 3,
            timeout,
            backoff: 10,
        },
        concurrency,
        ..WorkerOptions::default()
    };
    let queues = opts.queues.clone();
    let working = tokio::spawn(worker::run(rt.clone(), opts, stop.clone()));
    let scheduled = scheduler::run_reloadable(
        rx,
        rt.clone(),
        scheduling.clone(),
        None,
        Duration::from_secs(ctx.config.lease_seconds),
        ctx.started,
    )
    .await;
    let rehearsed = until.filter(|_| scheduling.reason() == StopReason::Until);
    if rehearsed.is_some() {
        wait_until_drained(&rt, &queues, &stop).await;
        stop.stop(StopReason::Until);
    }
    stop.stop(StopReason::Signal);
    let worked = working.await?;
    if let Some(server) = server {
        server.await??;
    }
    scheduled?;
    worked?;
    tracing::info!("conecta stopped");
    if let Some(t) = rehearsed {
        let mut out = std::io::stdout().lock();
        return rehearsal_summary(&rt, &schedule, from, t, &mut out).await;
    }
    Ok(ExitStatus::Success)
}
