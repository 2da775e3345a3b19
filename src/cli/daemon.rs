//! What the long-running commands (`worker`, `scheduler`, `start`) share: the `--concurrency`
//! bound, the SIGTERM/SIGINT listener that stops them gracefully, the SIGHUP listener that
//! reloads the schedule, and the start-up announcement of what is scheduled. Command files
//! import from here, never from each other.

use std::sync::Arc;

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
    schedule: Option<Arc<Schedule>>,
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
    tracing::info!(%addr, "HTTP server listening");
    let state = Arc::new(crate::http::AppState::new(rt, http, schedule));
    Ok(tokio::spawn(crate::http::serve(listener, state, stop)))
}
