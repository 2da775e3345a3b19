//! `conecta schedule next`: the next N occurrences across the enabled entries.

use std::io::Write;

use super::args::OutputFormat;
use super::output::write_occurrences;
use super::{Context, ExitStatus};
use crate::schedule::NEXT_HORIZON as HORIZON;
use crate::schedule::planner::merged;

pub fn run(
    ctx: &Context,
    count: usize,
    format: OutputFormat,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let schedule = ctx.schedule()?;
    let entries: Vec<_> = schedule.enabled().collect();
    let now = ctx.clock.now();
    let upcoming = merged(&entries, now, now + HORIZON).take(count);
    write_occurrences(&entries, upcoming, format, out)?;
    Ok(ExitStatus::Success)
}
