//! `conecta schedule simulate`: every occurrence in `[from, to)`, in order.
//!
//! JSON is written by hand from pre-escaped pieces: a year of the production schedule is over
//! half a million lines, and this keeps it well under a second.

use std::io::Write;

use super::args::OutputFormat;
use super::{Context, ExitStatus, UsageError, instant_arg, output};
use crate::rfc3339;
use crate::schedule::planner::merged;
use crate::schedule::{Entry, Occurrence};

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
    write_occurrences(&entries, merged(&entries, from, to), format, out)?;
    Ok(ExitStatus::Success)
}

/// Writes occurrences as JSON lines (`name`, `task`, `due`, `local`, and `fire_at` when the
/// entry has jitter) or as a table.
pub fn write_occurrences(
    entries: &[&Entry],
    occurrences: impl Iterator<Item = (usize, Occurrence)>,
    format: OutputFormat,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        OutputFormat::Json => {
            let prefixes: Vec<Vec<u8>> = entries
                .iter()
                .map(|e| {
                    format!(
                        "{{\"name\":{},\"task\":{},\"due\":\"",
                        serde_json::Value::from(e.name.as_str()),
                        serde_json::Value::from(e.task.as_str())
                    )
                    .into_bytes()
                })
                .collect();
            let mut buf = Vec::with_capacity(1 << 16);
            for (i, o) in occurrences {
                buf.extend_from_slice(&prefixes[i]);
                rfc3339::push_utc(&mut buf, o.due);
                buf.extend_from_slice(b"\",\"local\":\"");
                rfc3339::push_local(&mut buf, o.due, o.offset_seconds);
                if entries[i].jitter.is_some() {
                    buf.extend_from_slice(b"\",\"fire_at\":\"");
                    rfc3339::push_utc(&mut buf, o.fire_at(entries[i]));
                }
                buf.extend_from_slice(b"\"}\n");
                if buf.len() > (1 << 16) - 256 {
                    out.write_all(&buf)?;
                    buf.clear();
                }
            }
            out.write_all(&buf)
        }
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = occurrences
                .map(|(i, o)| {
                    vec![
                        rfc3339::utc(o.due),
                        rfc3339::local(o.due, o.offset_seconds),
                        entries[i].name.clone(),
                        entries[i].task.clone(),
                    ]
                })
                .collect();
            output::table(out, &["DUE (UTC)", "LOCAL", "NAME", "TASK"], &rows)
        }
    }
}
