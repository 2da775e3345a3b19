//! `conecta scheduler`: the scheduler daemon. Refuses to start on an invalid schedule file;
//! SIGTERM/SIGINT stop claiming and let the runs in hand finish, then it exits 0.

use std::sync::Arc;

use super::worker::spawn_signal_listener;
use super::{Context, ExitStatus};
use crate::queue::worker::StopHandle;
use crate::schedule::scheduler;

pub async fn run(ctx: &Context) -> anyhow::Result<ExitStatus> {
    let schedule = Arc::new(ctx.schedule()?);
    let rt = ctx.runtime().await?;
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
    let stop = StopHandle::default();
    spawn_signal_listener(stop.clone());
    scheduler::run(schedule, rt, stop, None).await?;
    tracing::info!("scheduler stopped");
    Ok(ExitStatus::Success)
}
