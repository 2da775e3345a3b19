//! `conecta schedule history`: recorded runs and their outcomes, newest first.

use std::io::Write;

use serde_json::json;

use super::args::OutputFormat;
use super::{Context, ExitStatus, output};
use crate::rfc3339;
use crate::store::schedule_runs;

pub async fn run(
    ctx: &Context,
    task: Option<&str>,
    limit: i64,
    format: OutputFormat,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let db = ctx.db().await?;
    let runs = schedule_runs::history(&db, task, limit).await?;
    match format {
        OutputFormat::Json => {
            let items: Vec<_> = runs
                .iter()
                .map(|r| {
                    json!({
                        "id": r.id,
                        "entry": r.entry,
                        "task": r.task,
                        "due": rfc3339::utc(r.due_at),
                        "attempt": r.attempt,
                        "manual": r.manual,
                        "runner": r.runner,
                        "started_at": r.started_at.map(rfc3339::utc),
                        "finished_at": r.finished_at.map(rfc3339::utc),
                        "outcome": r.outcome,
                        "error": r.error,
                    })
                })
                .collect();
            writeln!(out, "{}", serde_json::Value::Array(items))?;
        }
        OutputFormat::Table if runs.is_empty() => writeln!(out, "No recorded runs.")?,
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = runs
                .iter()
                .map(|r| {
                    let took = match (r.started_at, r.finished_at) {
                        (Some(s), Some(f)) => format!("{}ms", (f - s).num_milliseconds()),
                        _ => "-".into(),
                    };
                    vec![
                        rfc3339::utc(r.due_at),
                        r.entry.clone(),
                        r.task.clone(),
                        if r.attempt > 1 {
                            format!("{} (attempt {})", r.outcome, r.attempt)
                        } else {
                            r.outcome.clone()
                        },
                        took,
                        r.runner.clone(),
                        r.error
                            .as_deref()
                            .and_then(|e| e.lines().next())
                            .unwrap_or("")
                            .to_string(),
                    ]
                })
                .collect();
            output::table(
                out,
                &["DUE", "ENTRY", "TASK", "OUTCOME", "TOOK", "RUNNER", "ERROR"],
                &rows,
            )?;
        }
    }
    Ok(ExitStatus::Success)
}
