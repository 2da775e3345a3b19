//! `conecta schedule health`: overdue entries (the dead-man's switch), live schedulers and
//! schedule hash mismatches. Exit 1 when any entry is overdue.

use std::io::Write;

use serde_json::json;

use super::args::OutputFormat;
use super::{Context, ExitStatus, output};
use crate::rfc3339;
use crate::schedule::health::{self, State};
use crate::store::{heartbeats, schedule_runs};

pub async fn run(
    ctx: &Context,
    format: OutputFormat,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let schedule = ctx.schedule()?;
    let db = ctx.db().await?;
    let now = ctx.clock.now();
    let mut entries = Vec::new();
    for entry in schedule.enabled() {
        let (last_success, first) = schedule_runs::last_success_and_first(&db, &entry.name).await?;
        let state = health::judge(entry, last_success, first, now);
        entries.push((entry, state, last_success, health::period(entry, now)));
    }
    let schedulers = heartbeats::alive_schedulers(&db, now).await?;
    let hashes = heartbeats::schedule_hashes(&schedulers);
    let mismatch = hashes.len() > 1 || hashes.first().is_some_and(|h| *h != schedule.hash);
    let overdue = entries
        .iter()
        .filter(|(_, s, _, _)| *s == State::Overdue)
        .count();
    match format {
        OutputFormat::Json => {
            let v = json!({
                "overdue": overdue,
                "schedule_hash": schedule.hash,
                "hash_mismatch": mismatch,
                "entries": entries.iter().map(|(e, s, last, period)| json!({
                    "name": e.name,
                    "task": e.task,
                    "state": s,
                    "last_success": last.map(rfc3339::utc),
                    "period_seconds": period.map(|p| p.num_seconds()),
                })).collect::<Vec<_>>(),
                "schedulers": schedulers.iter().map(|s| json!({
                    "host": s.host, "pid": s.pid, "schedule_hash": s.schedule_hash,
                    "started_at": rfc3339::utc(s.started_at), "last_seen_at": rfc3339::utc(s.last_seen_at),
                    "status": s.status,
                })).collect::<Vec<_>>(),
            });
            writeln!(out, "{v}")?;
        }
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|(e, s, last, period)| {
                    vec![
                        e.name.clone(),
                        format!("{s:?}").to_lowercase(),
                        last.map(rfc3339::utc).unwrap_or_else(|| "never".into()),
                        period
                            .map(|p| {
                                crate::duration::Human(p.to_std().unwrap_or_default()).to_string()
                            })
                            .unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            output::table(out, &["ENTRY", "STATE", "LAST SUCCESS", "PERIOD"], &rows)?;
            writeln!(out, "live schedulers: {}", schedulers.len())?;
            if !schedulers.is_empty() {
                let rows: Vec<Vec<String>> = schedulers
                    .iter()
                    .map(|s| {
                        vec![
                            s.host.clone(),
                            s.pid.to_string(),
                            s.schedule_hash.clone(),
                            rfc3339::utc(s.last_seen_at),
                            s.status.clone(),
                        ]
                    })
                    .collect();
                output::table(
                    out,
                    &["HOST", "PID", "SCHEDULE HASH", "LAST SEEN", "STATUS"],
                    &rows,
                )?;
            }
            if mismatch {
                writeln!(
                    out,
                    "warning: live schedulers run different schedules (this file's hash is {}); they disagree on what is due",
                    schedule.hash
                )?;
            }
            if overdue > 0 {
                writeln!(
                    out,
                    "{overdue} entr{} overdue",
                    if overdue == 1 { "y is" } else { "ies are" }
                )?;
            }
        }
    }
    Ok(if overdue > 0 {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}
