//! `model:prune` (daily at 04:00): deletes processed outbox rows, old failed jobs, finished
//! batches, old schedule runs and per-minute job counts, each past its retention (days, configurable per run), in
//! chunks so no statement holds locks for long.

use chrono::TimeDelta;
use serde::Deserialize;

use crate::queue::{JobContext, Registry};
use crate::store::{self, prune};

/// Rows deleted per statement.
pub const CHUNK: u64 = 5_000;

/// `model:prune` arguments: days each kind of row is kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// Processed outbox messages (default 7, as `outbox prune`).
    #[serde(default)]
    pub outbox_days: Option<i64>,
    /// Failed jobs (default 30).
    #[serde(default)]
    pub failed_jobs_days: Option<i64>,
    /// Finished or cancelled batches (default 7).
    #[serde(default)]
    pub batches_days: Option<i64>,
    /// Finished schedule runs (default 30).
    #[serde(default)]
    pub schedule_runs_days: Option<i64>,
    /// Per-minute job counts of the dashboard and /metrics (default 7).
    #[serde(default)]
    pub queue_minutes_days: Option<i64>,
}

impl Args {
    /// Days `target` is kept.
    pub fn days(&self, target: prune::Target) -> i64 {
        match target {
            prune::Target::Outbox => self.outbox_days.unwrap_or(7),
            prune::Target::FailedJobs => self.failed_jobs_days.unwrap_or(30),
            prune::Target::Batches => self.batches_days.unwrap_or(7),
            prune::Target::ScheduleRuns => self.schedule_runs_days.unwrap_or(30),
            prune::Target::QueueMinutes => self.queue_minutes_days.unwrap_or(7),
        }
    }
}

/// Prunes one target older than `days` with a progress bar; returns rows deleted.
pub async fn prune_target(
    ctx: &JobContext,
    target: prune::Target,
    days: i64,
) -> store::Result<u64> {
    let before = ctx.clock.now() - TimeDelta::days(days);
    let total = prune::count(&ctx.db, target, before).await?;
    if total == 0 {
        return Ok(0);
    }
    let bar = ctx.rt.settings.progress.bar(target.name(), Some(total));
    prune::all(&ctx.db, target, before, CHUNK, |n| bar.set(n)).await
}

/// Registers `model:prune`.
pub fn register(r: &mut Registry) {
    r.register("model:prune", |ctx: JobContext, a: Args| async move {
        for target in prune::ALL {
            let n = prune_target(&ctx, target, a.days(target))
                .await
                .map_err(super::retry)?;
            tracing::info!(table = target.name(), deleted = n, "pruned");
        }
        Ok(())
    });
}
