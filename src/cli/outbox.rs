//! `conecta outbox process|coroner|replay|prune` (docs/outbox.md).

use std::io::Write;

use chrono::TimeDelta;
use serde_json::json;

use super::args::{OutboxCommand, OutputFormat};
use super::{Context, ExitStatus, UsageError, output};
use crate::progress::Progress;
use crate::rfc3339;
use crate::store::outbox::{self, Message};
use crate::store::prune::{self, Target};
use crate::tasks;

fn to_json(m: &Message) -> serde_json::Value {
    json!({
        "id": m.id,
        "aggregate_type": m.aggregate_type,
        "aggregate_id": m.aggregate_id,
        "event_type": m.event_type,
        "attempts": m.attempts,
        "last_error": m.last_error,
        "created_at": rfc3339::utc(m.created_at),
        "available_at": rfc3339::utc(m.available_at),
        "claimed_at": m.claimed_at.map(rfc3339::utc),
        "claimed_by": m.claimed_by,
    })
}

pub async fn run(
    ctx: &Context,
    cmd: &OutboxCommand,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let rt = ctx.runtime().await?.with_progress(Progress::on_terminal());
    let progress = rt.settings.progress.clone();
    match cmd {
        OutboxCommand::Process { batch, limit } => {
            let bar = progress.bar("outbox process", None);
            let report = tasks::outbox::process(&rt, *batch, *limit, |n| bar.set(n)).await?;
            bar.finish();
            writeln!(
                out,
                "published {} message(s), {} failed",
                report.published, report.failed
            )?;
            Ok(if report.failed > 0 {
                ExitStatus::Failure
            } else {
                ExitStatus::Success
            })
        }
        OutboxCommand::Coroner {
            stuck_after,
            attempts,
            limit,
            format,
        } => {
            let after = crate::duration::parse(stuck_after).map_err(|e| {
                UsageError::new(format!("--stuck-after: {e}"), Some("e.g. 10m".into()))
            })?;
            let before = rt.clock.now() - TimeDelta::from_std(after).unwrap_or(TimeDelta::MAX);
            let stuck = outbox::stuck(&rt.db, before, *attempts, *limit).await?;
            match format {
                OutputFormat::Json => {
                    let list: Vec<_> = stuck.iter().map(to_json).collect();
                    writeln!(out, "{}", serde_json::Value::Array(list))?;
                }
                OutputFormat::Table => {
                    if stuck.is_empty() {
                        writeln!(out, "no stuck outbox messages")?;
                    } else {
                        let rows: Vec<Vec<String>> = stuck
                            .iter()
                            .map(|m| {
                                vec![
                                    m.id.to_string(),
                                    m.event_type.clone(),
                                    format!("{}:{}", m.aggregate_type, m.aggregate_id),
                                    m.attempts.to_string(),
                                    m.claimed_at.map(rfc3339::utc).unwrap_or_else(|| "-".into()),
                                    m.last_error
                                        .as_deref()
                                        .and_then(|e| e.lines().next())
                                        .unwrap_or("-")
                                        .to_string(),
                                ]
                            })
                            .collect();
                        output::table(
                            out,
                            &[
                                "ID",
                                "EVENT",
                                "AGGREGATE",
                                "ATTEMPTS",
                                "CLAIMED_AT",
                                "LAST_ERROR",
                            ],
                            &rows,
                        )?;
                    }
                }
            }
            Ok(ExitStatus::Success)
        }
        OutboxCommand::Replay { from_id, to_id } => {
            if from_id > to_id {
                return Err(UsageError::new(
                    format!("--from-id {from_id} is after --to-id {to_id}"),
                    Some("give the lower id first".into()),
                )
                .into());
            }
            let bar = progress.bar("outbox replay", Some((to_id - from_id + 1) as u64));
            let (published, failures) =
                tasks::outbox::replay(&rt, *from_id, *to_id, |n| bar.set(n)).await?;
            bar.finish();
            writeln!(out, "replayed {published} message(s)")?;
            for (id, why) in &failures {
                say!("error: outbox message {id}: {why}");
            }
            Ok(if failures.is_empty() {
                ExitStatus::Success
            } else {
                ExitStatus::Failure
            })
        }
        OutboxCommand::Prune { days } => {
            let before = rt.clock.now() - TimeDelta::days(*days);
            let total = prune::count(&rt.db, Target::Outbox, before).await?;
            let bar = progress.bar("outbox prune", Some(total));
            let n = prune::all(&rt.db, Target::Outbox, before, tasks::prune::CHUNK, |n| {
                bar.set(n)
            })
            .await?;
            bar.finish();
            writeln!(
                out,
                "pruned {n} processed message(s) older than {days} day(s)"
            )?;
            Ok(ExitStatus::Success)
        }
    }
}
