//! `conecta queue failed|retry|forget|flush|restart|status`.

use std::io::Write;

use chrono::TimeDelta;
use serde_json::json;

use super::args::{OutputFormat, QueueCommand};
use super::{Context, ExitStatus, UsageError, output};
use crate::rfc3339;
use crate::store::{failed_jobs, heartbeats};

pub async fn run(
    ctx: &Context,
    cmd: &QueueCommand,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    match cmd {
        QueueCommand::Failed { format } => failed(ctx, *format, out).await,
        QueueCommand::Retry { id } => retry(ctx, id, out).await,
        QueueCommand::Forget { id } => {
            let db = ctx.db().await?;
            let n: i64 = id.parse().map_err(|_| {
                UsageError::new(
                    format!("expected a failed job id (a number), got: {id:?}"),
                    None,
                )
            })?;
            if failed_jobs::delete(&db, n).await? {
                writeln!(out, "forgot failed job {n}")?;
                Ok(ExitStatus::Success)
            } else {
                say!("error: no failed job with id {n}");
                say!("hint: `conecta queue failed` lists them");
                Ok(ExitStatus::Failure)
            }
        }
        QueueCommand::Flush => {
            let db = ctx.db().await?;
            let n = failed_jobs::flush(&db).await?;
            writeln!(out, "flushed {n} failed job(s)")?;
            Ok(ExitStatus::Success)
        }
        QueueCommand::Restart => {
            let db = ctx.db().await?;
            let old = heartbeats::read_signal(&db, "restart").await?.unwrap_or(0);
            let now = ctx.clock.now().timestamp_millis();
            heartbeats::signal(&db, "restart", now.max(old + 1)).await?;
            writeln!(
                out,
                "restart signal sent: every worker exits after its current job"
            )?;
            Ok(ExitStatus::Success)
        }
        QueueCommand::Status { format } => status(ctx, *format, out).await,
    }
}

fn job_name(payload: &str) -> String {
    serde_json::from_str::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v.get("job").and_then(|j| j.as_str()).map(String::from))
        .unwrap_or_else(|| "?".into())
}

async fn failed(
    ctx: &Context,
    format: OutputFormat,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let db = ctx.db().await?;
    let rows = failed_jobs::list(&db).await?;
    match format {
        OutputFormat::Json => {
            let items: Vec<_> = rows
                .iter()
                .map(|f| {
                    json!({
                        "id": f.id,
                        "uuid": f.uuid,
                        "connection": f.connection,
                        "queue": f.queue,
                        "job": job_name(&f.payload),
                        "failed_at": rfc3339::utc(f.failed_at),
                        "exception": f.exception,
                    })
                })
                .collect();
            writeln!(out, "{}", serde_json::Value::Array(items))?;
        }
        OutputFormat::Table => {
            if rows.is_empty() {
                writeln!(out, "No failed jobs.")?;
                return Ok(ExitStatus::Success);
            }
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|f| {
                    vec![
                        f.id.to_string(),
                        f.queue.clone(),
                        job_name(&f.payload),
                        rfc3339::utc(f.failed_at),
                        f.exception.lines().next().unwrap_or("").to_string(),
                    ]
                })
                .collect();
            output::table(
                out,
                &["ID", "QUEUE", "JOB", "FAILED_AT", "EXCEPTION"],
                &table,
            )?;
        }
    }
    Ok(ExitStatus::Success)
}

async fn retry(ctx: &Context, id: &str, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let rt = ctx.runtime().await?;
    let ids: Vec<i64> = if id == "all" {
        failed_jobs::list(&rt.db)
            .await?
            .iter()
            .map(|f| f.id)
            .collect()
    } else {
        vec![id.parse().map_err(|_| {
            UsageError::new(
                format!("expected a failed job id or \"all\", got: {id:?}"),
                None,
            )
        })?]
    };
    let mut missing = false;
    for n in ids {
        match rt.retry_failed(n).await? {
            Some(uuid) => writeln!(out, "retried failed job {n} ({uuid})")?,
            None => {
                say!("error: no failed job with id {n}");
                missing = true;
            }
        }
    }
    Ok(if missing {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

async fn status(
    ctx: &Context,
    format: OutputFormat,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let db = ctx.db().await?;
    let now = ctx.clock.now();
    // Redis being away is what an operator runs this to find out: say so, and still show
    // the workers (their status says what they wait for); exit 1.
    let depths = match crate::queue::open(&ctx.config, &db).await {
        Ok(queue) => queue.depths(now).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let connection = ctx.config.queue_connection.name();
    let failed_last_hour = failed_jobs::count_since(&db, now - TimeDelta::hours(1)).await?;
    let workers = heartbeats::alive(&db, now).await?;
    let unreachable = depths.as_ref().err().cloned();
    let depths = depths.unwrap_or_default();
    match format {
        OutputFormat::Json => {
            let v = json!({
                "connection": connection,
                "queues": depths,
                "queue_error": unreachable,
                "failed_last_hour": failed_last_hour,
                "workers": workers.iter().map(|w| json!({
                    "id": w.id, "host": w.host, "pid": w.pid, "queues": w.queues,
                    "started_at": rfc3339::utc(w.started_at), "last_seen_at": rfc3339::utc(w.last_seen_at),
                    "jobs_processed": w.jobs_processed, "status": w.status,
                })).collect::<Vec<_>>(),
            });
            writeln!(out, "{v}")?;
        }
        OutputFormat::Table => {
            writeln!(out, "connection: {connection}")?;
            if let Some(e) = &unreachable {
                writeln!(out, "queue unreachable: {e}")?;
            }
            let rows: Vec<Vec<String>> = depths
                .iter()
                .map(|d| {
                    vec![
                        d.queue.clone(),
                        d.pending.to_string(),
                        d.reserved.to_string(),
                        d.delayed.to_string(),
                    ]
                })
                .collect();
            if rows.is_empty() {
                writeln!(out, "no jobs in any queue")?;
            } else {
                output::table(out, &["QUEUE", "PENDING", "RESERVED", "DELAYED"], &rows)?;
            }
            writeln!(out, "failed in the last hour: {failed_last_hour}")?;
            writeln!(out, "workers alive: {}", workers.len())?;
            if !workers.is_empty() {
                let rows: Vec<Vec<String>> = workers
                    .iter()
                    .map(|w| {
                        vec![
                            w.host.clone(),
                            w.pid.to_string(),
                            w.queues.clone(),
                            w.jobs_processed.to_string(),
                            rfc3339::utc(w.last_seen_at),
                            w.status.clone(),
                        ]
                    })
                    .collect();
                output::table(
                    out,
                    &["HOST", "PID", "QUEUES", "PROCESSED", "LAST SEEN", "STATUS"],
                    &rows,
                )?;
            }
        }
    }
    Ok(if unreachable.is_some() {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}
