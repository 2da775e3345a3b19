//! `conecta schedule list`: the entries with cron, zone and next due time.

use std::io::Write;

use serde_json::json;

use super::args::OutputFormat;
use super::{Context, ExitStatus, output};
use crate::rfc3339;
use crate::schedule::NEXT_HORIZON as HORIZON;
use crate::schedule::{Entry, Occurrence, occurrences};

fn next_of(entry: &Entry, ctx: &Context) -> Option<Occurrence> {
    if !entry.enabled {
        return None;
    }
    let now = ctx.clock.now();
    occurrences(entry, now, now + HORIZON).next()
}

pub fn run(ctx: &Context, format: OutputFormat, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let schedule = ctx.schedule()?;
    match format {
        OutputFormat::Json => {
            let items: Vec<_> = schedule
                .entries
                .iter()
                .map(|e| {
                    let next = next_of(e, ctx);
                    json!({
                        "name": e.name,
                        "task": e.task,
                        "cron": e.cron.as_str(),
                        "timezone": e.timezone.name(),
                        "enabled": e.enabled,
                        "mode": e.mode,
                        "queue": e.queue,
                        "overlap": e.overlap,
                        "catch_up": e.catch_up,
                        "description": e.description,
                        "next_due": next.map(|o| rfc3339::utc(o.due)),
                        "next_local": next.map(|o| rfc3339::local(o.due, o.offset_seconds)),
                    })
                })
                .collect();
            writeln!(out, "{}", serde_json::Value::Array(items))?;
        }
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = schedule
                .entries
                .iter()
                .map(|e| {
                    let (utc, local) = match next_of(e, ctx) {
                        Some(o) => (rfc3339::utc(o.due), rfc3339::local(o.due, o.offset_seconds)),
                        None if !e.enabled => ("disabled".into(), "-".into()),
                        None => ("never".into(), "-".into()),
                    };
                    vec![
                        e.name.clone(),
                        e.task.clone(),
                        e.cron.as_str().to_string(),
                        e.timezone.name().to_string(),
                        utc,
                        local,
                    ]
                })
                .collect();
            output::table(
                out,
                &[
                    "NAME",
                    "TASK",
                    "CRON",
                    "TIMEZONE",
                    "NEXT DUE (UTC)",
                    "NEXT DUE (LOCAL)",
                ],
                &rows,
            )?;
        }
    }
    Ok(ExitStatus::Success)
}
