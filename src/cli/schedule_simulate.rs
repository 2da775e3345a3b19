//! `conecta schedule simulate`: every occurrence in `[from, to)`, in order.
//!
//! JSON is written by hand from pre-escaped pieces: a year of the production schedule is over
//! half a million lines, and this keeps it well under a second.

use std::io::Write;

use super::args::OutputFormat;
use super::{Context, ExitStatus, UsageError, instant_arg, output};
use crate::rfc3339;
use crate::schedule::planner::merged;

pub fn run(
    ctx: &Context,
    from: Option<&str>,
    to: &str,
    format: OutputFormat,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let from = match from {
        Some(t) => instant_arg("--from", t)?,
        None => ctx.clock.now(),
    };
    let to = instant_arg("--to", to)?;
    if to < from {
        return Err(UsageError::new(
            format!(
                "--to ({}) is before --from ({})",
                rfc3339::utc(to),
                rfc3339::utc(from)
            ),
            Some("the range is [from, to): give an end after the start".to_string()),
        )
        .into());
    }
    let schedule = ctx.schedule()?;
    let entries: Vec<_> = schedule.enabled().collect();
    output::write_occurrences(&entries, merged(&entries, from, to), format, out)?;
    Ok(ExitStatus::Success)
}
