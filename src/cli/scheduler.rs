//! `conecta scheduler`: the scheduler daemon. Refuses to start on an invalid schedule file;
//! SIGTERM/SIGINT stop claiming and let the runs in hand finish, then it exits 0.

use std::sync::Arc;

use super::worker::spawn_signal_listener;
use super::{Context, ExitStatus};
use crate::queue::worker::StopHandle;
use crate::schedule::scheduler;
use crate::schedule::{Schedule, file};

pub async fn run(ctx: &Context) -> anyhow::Result<ExitStatus> {
    let schedule = Arc::new(ctx.schedule()?);
    let stop = StopHandle::default();
    spawn_signal_listener(stop.clone());
    let Some(rt) = ctx.runtime_waiting(&stop, false).await? else {
        tracing::info!("stopped while waiting for a dependency");
        return Ok(ExitStatus::Success);
    };
    announce(ctx, &schedule);
    let (tx, rx) = tokio::sync::watch::channel(schedule);
    spawn_reload_listener(ctx, tx);
    scheduler::run_reloadable(
        rx,
        rt,
        stop,
        None,
        std::time::Duration::from_secs(ctx.config.lease_seconds),
        ctx.started,
    )
    .await?;
    tracing::info!("scheduler stopped");
    Ok(ExitStatus::Success)
}

/// Logs each enabled entry with its next due time, so a fresh start shows what will happen.
pub fn announce(ctx: &Context, schedule: &Schedule) {
    for entry in schedule.enabled() {
        let next = crate::schedule::occurrences(
            entry,
            ctx.clock.now(),
            ctx.clock.now() + chrono::TimeDelta::days(400),
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
