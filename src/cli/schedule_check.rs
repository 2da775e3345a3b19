//! `conecta schedule check [FILE]`: validate, then list the DST changes of the next 12
//! months that move or remove a run.

use std::io::Write;
use std::path::Path;

use chrono::TimeDelta;

use super::{Context, ExitStatus, load_schedule, output};
use crate::schedule::dst;

pub fn run(ctx: &Context, file: Option<&Path>, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let path = file.unwrap_or(&ctx.schedule_path);
    let schedule = load_schedule(path, &ctx.config)?;
    let enabled = schedule.enabled().count();
    writeln!(
        out,
        "{}: ok, {} entr{} ({} enabled), hash {}",
        path.display(),
        schedule.entries.len(),
        if schedule.entries.len() == 1 {
            "y"
        } else {
            "ies"
        },
        enabled,
        schedule.hash
    )?;
    if enabled == 0 {
        say!(
            "warning: {} has no enabled entry: a scheduler running it fires nothing until a reload",
            path.display()
        );
    }
    let now = ctx.clock.now();
    let impacts = dst::report(&schedule, now, now + TimeDelta::days(365));
    if impacts.is_empty() {
        writeln!(
            out,
            "No DST change moves or removes a run in the next 12 months."
        )?;
    } else {
        writeln!(out, "DST changes in the next 12 months:")?;
        let rows: Vec<Vec<String>> = impacts
            .iter()
            .map(|i| {
                vec![
                    i.date.to_string(),
                    i.entry.clone(),
                    i.timezone.name().to_string(),
                    i.detail.clone(),
                ]
            })
            .collect();
        output::table(out, &["DATE", "ENTRY", "TIMEZONE", "WHAT HAPPENS"], &rows)?;
    }
    Ok(ExitStatus::Success)
}
