//! `conecta scheduler`: the scheduler daemon. Refuses to start on an invalid schedule file;
//! SIGTERM/SIGINT stop claiming and let the runs in hand finish, then it exits 0.

use std::sync::Arc;

use super::daemon::{announce, spawn_reload_listener, spawn_signal_listener};
use super::{Context, ExitStatus};
use crate::schedule::scheduler;
use crate::stop::StopHandle;

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
