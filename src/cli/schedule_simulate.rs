//! `conecta schedule simulate`: every occurrence in `[from, to)`, in order.
//!
//! JSON is written by hand from pre-escaped pieces: a year of the production schedule is over
//! half a million lines, and this keeps it well under a second.

use std::io::Write;

use super::args::OutputFormat;
use super::{Context, ExitStatus, output, window_args};
use crate::schedule::planner::merged;

pub fn run(
    ctx: &Context,
    from: Option<&str>,
    to: &str,
    format: OutputFormat,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let (from, to) = window_args(ctx, from, Some(to), chrono::TimeDelta::zero())?;
    let schedule = ctx.schedule()?;
    let entries: Vec<_> = schedule.enabled().collect();
    output::write_occurrences(&entries, merged(&entries, from, to), format, out)?;
    Ok(ExitStatus::Success)
}
