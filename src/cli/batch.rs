//! `conecta batch list|show|cancel`: fan-out batches and their progress.

use std::io::Write;

use serde_json::json;

use super::args::{BatchCommand, OutputFormat};
use super::{Context, ExitStatus, output};
use crate::rfc3339;
use crate::store::batches::{self, Batch};

fn to_json(b: &Batch) -> serde_json::Value {
    json!({
        "id": b.id,
        "name": b.name,
        "total_jobs": b.total_jobs,
        "pending_jobs": b.pending_jobs,
        "failed_jobs": b.failed_jobs,
        "processed_jobs": b.processed(),
        "progress": b.progress(),
        "failed_job_ids": b.failed_job_ids,
        "created_at": rfc3339::utc(b.created_at),
        "cancelled_at": b.cancelled_at.map(rfc3339::utc),
        "finished_at": b.finished_at.map(rfc3339::utc),
    })
}

fn state(b: &Batch) -> &'static str {
    if b.cancelled_at.is_some() {
        "cancelled"
    } else if b.finished_at.is_some() {
        "finished"
    } else if b.dispatching {
        "dispatching"
    } else {
        "running"
    }
}

fn row(b: &Batch) -> Vec<String> {
    vec![
        b.id.clone(),
        b.name.clone(),
        b.total_jobs.to_string(),
        b.processed().to_string(),
        b.failed_jobs.to_string(),
        format!("{}%", b.progress()),
        state(b).to_string(),
        rfc3339::utc(b.created_at),
    ]
}

const HEADER: [&str; 8] = [
    "ID",
    "NAME",
    "TOTAL",
    "PROCESSED",
    "FAILED",
    "PROGRESS",
    "STATE",
    "CREATED_AT",
];

pub async fn run(
    ctx: &Context,
    cmd: &BatchCommand,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let db = ctx.db().await?;
    match cmd {
        BatchCommand::List { limit, format } => {
            let list = batches::list(&db, *limit).await?;
            match format {
                OutputFormat::Json => writeln!(
                    out,
                    "{}",
                    serde_json::Value::Array(list.iter().map(to_json).collect())
                )?,
                OutputFormat::Table if list.is_empty() => writeln!(out, "No batches.")?,
                OutputFormat::Table => {
                    output::table(out, &HEADER, &list.iter().map(row).collect::<Vec<_>>())?
                }
            }
            Ok(ExitStatus::Success)
        }
        BatchCommand::Show { id, format } => {
            let Some(b) = batches::find(&db, id).await? else {
                say!("error: no batch with id {id}");
                say!("hint: `conecta batch list` shows recent batches");
                return Ok(ExitStatus::Failure);
            };
            match format {
                OutputFormat::Json => writeln!(out, "{}", to_json(&b))?,
                OutputFormat::Table => {
                    output::table(out, &HEADER, &[row(&b)])?;
                    if !b.failed_job_ids.is_empty() {
                        writeln!(out, "failed jobs: {}", b.failed_job_ids.join(", "))?;
                    }
                }
            }
            Ok(ExitStatus::Success)
        }
        BatchCommand::Cancel { id } => {
            if batches::cancel(&db, id, ctx.clock.now()).await? {
                writeln!(
                    out,
                    "cancelled batch {id}: its remaining jobs will be skipped"
                )?;
                Ok(ExitStatus::Success)
            } else {
                say!("error: no batch with id {id}");
                Ok(ExitStatus::Failure)
            }
        }
    }
}
