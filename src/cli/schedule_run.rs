//! `conecta schedule run` (alias `schedule:run`): one pass over the current minute, for sites
//! that keep cron calling it every minute. Each occurrence due in the minute is claimed through
//! the same exactly-once row as the scheduler daemon's, so a daemon, another `schedule:run` or
//! a second host never runs it again; occurrences later in the minute (sub-minute `every`
//! entries) are waited for. Exit 1 when a run this pass made failed.

use std::io::Write;

use chrono::{DurationRound, TimeDelta};
use serde_json::json;

use super::args::OutputFormat;
use super::daemon::spawn_signal_listener;
use super::{Context, ExitStatus, output};
use crate::rfc3339;
use crate::schedule::scheduler;
use crate::stop::StopHandle;
use crate::store::schedule_runs;

pub async fn run(
    ctx: &Context,
    format: OutputFormat,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let schedule = ctx.schedule()?;
    let rt = ctx.runtime().await?;
    let now = rt.clock.now();
    let minute = now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now);
    let stop = StopHandle::default();
    spawn_signal_listener(stop.clone());
    let lease = std::time::Duration::from_secs(ctx.config.lease_seconds);
    let ran = scheduler::run_window(
        &schedule,
        &rt,
        minute,
        minute + TimeDelta::minutes(1),
        lease,
        stop,
    )
    .await;
    let mut rows = Vec::new();
    let mut failed = false;
    for (entry, due, id) in ran {
        let run = match id {
            Some(id) => schedule_runs::find(&rt.db, id).await?,
            None => None,
        };
        let outcome = run.as_ref().map(|r| r.outcome.clone());
        failed |= outcome
            .as_deref()
            .is_some_and(|o| matches!(o, "failed" | "timed_out"));
        rows.push((entry, due, outcome, run.and_then(|r| r.error)));
    }
    match format {
        OutputFormat::Json => {
            let items: Vec<_> = rows
                .iter()
                .map(|(entry, due, outcome, error)| {
                    json!({
                        "entry": entry,
                        "due": rfc3339::utc(*due),
                        "claimed": outcome.is_some(),
                        "outcome": outcome,
                        "error": error,
                    })
                })
                .collect();
            writeln!(out, "{}", serde_json::Value::Array(items))?;
        }
        OutputFormat::Table if rows.is_empty() => writeln!(
            out,
            "Nothing is due in the minute from {}.",
            rfc3339::utc(minute)
        )?,
        OutputFormat::Table => {
            let table: Vec<Vec<String>> = rows
                .into_iter()
                .map(|(entry, due, outcome, error)| {
                    vec![
                        rfc3339::utc(due),
                        entry,
                        outcome.unwrap_or_else(|| "already claimed elsewhere".into()),
                        error
                            .as_deref()
                            .and_then(|e| e.lines().next())
                            .unwrap_or("")
                            .to_string(),
                    ]
                })
                .collect();
            output::table(out, &["DUE", "ENTRY", "OUTCOME", "ERROR"], &table)?;
        }
    }
    Ok(if failed {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}
