//! Plain aligned tables for people; JSON output is written by each command.

use std::io::{self, Write};

use super::args::OutputFormat;
use crate::rfc3339;
use crate::schedule::{Entry, Occurrence};

/// A setting's value as its schedule-file spelling: `"skip"`, not `"\"skip\""`; `none` when
/// unset.
pub fn setting_text<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(serde_json::Value::Null) => "none".into(),
        Ok(other) => other.to_string(),
        Err(_) => "?".into(),
    }
}

/// Writes `rows` under `header` with columns padded to their widest cell.
pub fn table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: &mut dyn Iterator<Item = &str>| -> io::Result<()> {
        let mut text = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            if i + 1 < widths.len() {
                text.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(out, &mut header.iter().copied())?;
    for row in rows {
        line(out, &mut row.iter().map(|s| s.as_str()))?;
    }
    Ok(())
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
            table(out, &["DUE (UTC)", "LOCAL", "NAME", "TASK"], &rows)
        }
    }
}
