//! `conecta worker` (alias `queue:work`): drains queues until a stop condition, then exits 0.

use std::time::Duration;

use super::args::WorkerArgs;
use super::daemon::{check_concurrency, spawn_signal_listener};
use super::{Context, ExitStatus, UsageError};
use crate::queue::runtime::Defaults;
use crate::queue::worker::{self, WorkerOptions};
use crate::stop::StopHandle;

pub async fn run(ctx: &Context, args: &WorkerArgs) -> anyhow::Result<ExitStatus> {
    let retry_after = ctx.config.retry_after;
    if args.timeout >= retry_after {
        return Err(UsageError::new(
            format!(
                "--timeout {} is not shorter than QUEUE_RETRY_AFTER ({retry_after}s): a job still running would be handed to a second worker",
                args.timeout
            ),
            Some(format!(
                "lower --timeout below {retry_after}, or raise QUEUE_RETRY_AFTER above {}",
                args.timeout
            )),
        )
        .into());
    }
    check_concurrency(args.concurrency)?;
    let year = crate::duration::MAX.as_secs();
    if !(args.sleep.is_finite() && args.sleep >= 0.0 && args.sleep <= year as f64) {
        return Err(UsageError::new(
            format!(
                "--sleep must be a number of seconds from 0 to {year} (a year), got: {}",
                args.sleep
            ),
            None,
        )
        .into());
    }
    for (flag, v) in [("--backoff", args.backoff), ("--max-time", args.max_time)] {
        if v > year {
            return Err(UsageError::new(
                format!("{flag} must be at most {year} seconds (a year), got: {v}"),
                None,
            )
            .into());
        }
    }
    let queues: Vec<String> = args
        .queue
        .iter()
        .map(|q| q.trim().to_string())
        .filter(|q| !q.is_empty())
        .collect();
    if queues.is_empty() {
        return Err(UsageError::new(
            "--queue names no queue",
            Some("e.g. --queue high,default".into()),
        )
        .into());
    }
    let stop = StopHandle::default();
    spawn_signal_listener(stop.clone());
    let Some(rt) = ctx.runtime_waiting(&stop, false).await? else {
        tracing::info!("stopped while waiting for a dependency");
        return Ok(ExitStatus::Success);
    };
    let opts = WorkerOptions {
        queues,
        sleep: Duration::from_secs_f64(args.sleep),
        defaults: Defaults {
            tries: args.tries,
            timeout: args.timeout,
            backoff: args.backoff,
        },
        max_time: (args.max_time > 0).then(|| Duration::from_secs(args.max_time)),
        max_jobs: if args.once {
            Some(1)
        } else {
            (args.max_jobs > 0).then_some(args.max_jobs)
        },
        memory_mb: (args.memory > 0).then_some(args.memory),
        concurrency: args.concurrency,
        stop_when_empty: args.stop_when_empty || args.once,
    };
    let summary = worker::run(rt, opts, stop).await?;
    tracing::info!(
        processed = summary.processed,
        peak_rss_kb = worker::peak_rss_kb(),
        "exiting: {}",
        summary.reason.describe()
    );
    Ok(ExitStatus::Success)
}
