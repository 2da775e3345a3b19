//! `conecta serve`: the HTTP edge alone (webhooks, downloads, health, metrics, dispatch API).
//! SIGTERM/SIGINT stop accepting and let requests in flight finish, then it exits 0.

use std::sync::Arc;

use super::daemon::{spawn_http, spawn_reload_listener, spawn_signal_listener};
use super::{Context, ExitStatus};
use crate::stop::StopHandle;

pub async fn run(ctx: &Context) -> anyhow::Result<ExitStatus> {
    let stop = StopHandle::default();
    spawn_signal_listener(stop.clone());
    let Some(rt) = ctx.runtime_waiting(&stop, false).await? else {
        tracing::info!("stopped while waiting for a dependency");
        return Ok(ExitStatus::Success);
    };
    // The schedule only feeds the overdue-entries metric and the dashboard's schedule page: a
    // missing or broken file is not a reason to refuse webhooks. SIGHUP reloads it.
    let schedule = match ctx.schedule() {
        Ok(s) => Some(Arc::new(s)),
        Err(e) => {
            tracing::warn!(error = %e, "no schedule loaded: /metrics reports no overdue entries");
            None
        }
    };
    let schedules = schedule.map(|s| {
        let (tx, rx) = tokio::sync::watch::channel(s);
        spawn_reload_listener(ctx, tx);
        rx
    });
    let server = spawn_http(ctx, rt, schedules, stop).await?;
    server.await??;
    tracing::info!("HTTP server stopped");
    Ok(ExitStatus::Success)
}
