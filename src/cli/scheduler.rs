//! `conecta scheduler`: the scheduler daemon. Refuses to start on an invalid schedule file;
//! SIGTERM/SIGINT stop claiming and let the runs in hand finish, then it exits 0.

use std::sync::Arc;

use super::daemon::{
    announce, rehearsal_summary, spawn_reload_listener, spawn_signal_listener, spawn_until,
    until_arg,
};
use super::{Context, ExitStatus};
use crate::schedule::scheduler;
use crate::stop::StopHandle;

pub async fn run(ctx: &Context, until: Option<&str>) -> anyhow::Result<ExitStatus> {
    let until = until_arg(ctx, until)?;
    let schedule = Arc::new(ctx.schedule()?);
    let from = ctx.started;
    let stop = StopHandle::default();
    spawn_signal_listener(stop.clone());
    if let Some(t) = until {
        spawn_until(ctx.clock.clone(), t, stop.clone());
    }
    let Some(rt) = ctx.runtime_waiting(&stop, false).await? else {
        tracing::info!("stopped while waiting for a dependency");
        return Ok(ExitStatus::Success);
    };
    announce(ctx, &schedule);
    let (tx, rx) = tokio::sync::watch::channel(schedule.clone());
    spawn_reload_listener(ctx, tx);
    scheduler::run_reloadable(
        rx,
        rt.clone(),
        stop.clone(),
        None,
        std::time::Duration::from_secs(ctx.config.lease_seconds),
        ctx.started,
    )
    .await?;
    tracing::info!("scheduler stopped");
    if let Some(t) = until
        && stop.reason() == crate::stop::StopReason::Until
    {
        let mut out = std::io::stdout().lock();
        return rehearsal_summary(&rt, &schedule, from, t, &mut out).await;
    }
    Ok(ExitStatus::Success)
}
