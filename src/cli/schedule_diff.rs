//! `conecta schedule diff OLD NEW`: what a change to the schedule file does to every run over a
//! window. For each entry: the occurrences added, removed and moved (a removed one paired, in
//! order, with an added one), and the settings that changed. Exit 0 when nothing changes,
//! 1 when something does, 2 when a file is invalid. `OLD` may be `git:REF`: NEW's file as it
//! was at that revision.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use super::args::OutputFormat;
use super::{Context, ExitStatus, UsageError, output, window_args};
use crate::rfc3339;
use crate::schedule::{Entry, Occurrence, Schedule, file, occurrences};

/// How many instants of each kind a report shows per entry.
const SHOWN: usize = 5;

/// The arguments of `schedule diff`.
pub struct DiffArgs<'a> {
    /// The old file, or `git:REF`.
    pub old: &'a str,
    /// The new file.
    pub new: &'a Path,
    /// Window start (default: now).
    pub from: Option<&'a str>,
    /// Window end (default: 366 days after the start).
    pub to: Option<&'a str>,
    /// table or json.
    pub format: OutputFormat,
}

pub fn run(ctx: &Context, args: &DiffArgs<'_>, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let (from, to) = window_args(ctx, args.from, args.to, TimeDelta::days(366))?;
    let (old_label, old_text) = read_old(args.old, args.new)?;
    let new_text = std::fs::read_to_string(args.new).map_err(|e| {
        UsageError::new(
            format!("cannot read {}: {e}", args.new.display()),
            Some("give the new schedule file as the second argument".to_string()),
        )
    })?;
    let tz = ctx.config.app_timezone;
    let old = file::parse(Path::new(&old_label), &old_text, tz)?;
    let new = file::parse(args.new, &new_text, tz)?;
    let report = compare(&old, &new, from, to);
    let changed = report.iter().any(|e| e.changed());
    match args.format {
        OutputFormat::Json => {
            let entries: Vec<Value> = report.iter().map(EntryDiff::json).collect();
            let doc = json!({
                "old": old_label,
                "new": args.new.display().to_string(),
                "from": rfc3339::utc(from),
                "to": rfc3339::utc(to),
                "changed": changed,
                "entries": entries,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        }
        OutputFormat::Table => write_table(&report, &old_label, args.new, from, to, out)?,
    }
    Ok(if changed {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// The old file's name for messages and its text: a path, or NEW's path at a git revision.
fn read_old(old: &str, new: &Path) -> anyhow::Result<(String, String)> {
    let Some(rev) = old.strip_prefix("git:") else {
        let text = std::fs::read_to_string(old).map_err(|e| {
            UsageError::new(
                format!("cannot read {old}: {e}"),
                Some(
                    "give the old schedule file, or git:REF for the new file at a revision".into(),
                ),
            )
        })?;
        return Ok((old.to_string(), text));
    };
    let dir = new
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = new
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let shown = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .arg("show")
        .arg(format!("{rev}:./{name}"))
        .output()
        .map_err(|e| {
            UsageError::new(
                format!("cannot run git for {old}: {e}"),
                Some("install git, or give the old file as a path".into()),
            )
        })?;
    if !shown.status.success() {
        return Err(UsageError::new(
            format!(
                "git cannot show {} at {rev}: {}",
                new.display(),
                String::from_utf8_lossy(&shown.stderr).trim()
            ),
            Some("REF must name a commit of the repository holding NEW, and the file must exist there".into()),
        )
        .into());
    }
    Ok((
        format!("{} at {rev}", new.display()),
        String::from_utf8_lossy(&shown.stdout).into_owned(),
    ))
}

/// What changed for one entry name.
struct EntryDiff {
    name: String,
    /// `added`, `removed`, `changed` or `unchanged`.
    status: &'static str,
    added: Vec<Occurrence>,
    removed: Vec<Occurrence>,
    /// (old, new) pairs: a removed occurrence and the added one that takes its place.
    moved: Vec<(Occurrence, Occurrence)>,
    /// (setting, old, new).
    settings: Vec<(&'static str, String, String)>,
}

impl EntryDiff {
    fn changed(&self) -> bool {
        self.status != "unchanged"
    }

    fn json(&self) -> Value {
        let list = |v: &[Occurrence]| -> Value {
            json!({
                "count": v.len(),
                "first": v.iter().take(SHOWN).map(instant).collect::<Vec<_>>(),
            })
        };
        json!({
            "name": self.name,
            "status": self.status,
            "added": list(&self.added),
            "removed": list(&self.removed),
            "moved": {
                "count": self.moved.len(),
                "first": self.moved.iter().take(SHOWN)
                    .map(|(a, b)| json!({"from": instant(a), "to": instant(b)}))
                    .collect::<Vec<_>>(),
            },
            "settings": self.settings.iter()
                .map(|(k, a, b)| json!({"setting": k, "old": a, "new": b}))
                .collect::<Vec<_>>(),
        })
    }
}

fn instant(o: &Occurrence) -> Value {
    json!({"utc": rfc3339::utc(o.due), "local": rfc3339::local(o.due, o.offset_seconds)})
}

fn shown(o: &Occurrence) -> String {
    format!(
        "{} ({})",
        rfc3339::utc(o.due),
        rfc3339::local(o.due, o.offset_seconds)
    )
}

/// The entries of both files, in NEW's order then the removed ones in OLD's order.
fn compare(
    old: &Schedule,
    new: &Schedule,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<EntryDiff> {
    let find = |s: &'_ Schedule, name: &str| s.entries.iter().find(|e| e.name == name).cloned();
    let mut names: Vec<String> = new.entries.iter().map(|e| e.name.clone()).collect();
    names.extend(
        old.entries
            .iter()
            .filter(|e| find(new, &e.name).is_none())
            .map(|e| e.name.clone()),
    );
    names
        .into_iter()
        .map(|name| {
            let (a, b) = (find(old, &name), find(new, &name));
            let before = a.as_ref().map(|e| planned(e, from, to)).unwrap_or_default();
            let after = b.as_ref().map(|e| planned(e, from, to)).unwrap_or_default();
            let gone: Vec<Occurrence> = before.difference(&after).copied().collect();
            let came: Vec<Occurrence> = after.difference(&before).copied().collect();
            let settings = match (&a, &b) {
                (Some(a), Some(b)) => settings(a, b),
                _ => Vec::new(),
            };
            let (removed, added, moved) = if a.is_some() && b.is_some() {
                let n = gone.len().min(came.len());
                let moved = gone[..n]
                    .iter()
                    .copied()
                    .zip(came[..n].iter().copied())
                    .collect();
                (gone[n..].to_vec(), came[n..].to_vec(), moved)
            } else {
                (gone, came, Vec::new())
            };
            let status = match (&a, &b) {
                (None, Some(_)) => "added",
                (Some(_), None) => "removed",
                _ if removed.is_empty()
                    && added.is_empty()
                    && moved.is_empty()
                    && settings.is_empty() =>
                {
                    "unchanged"
                }
                _ => "changed",
            };
            EntryDiff {
                name,
                status,
                added,
                removed,
                moved,
                settings,
            }
        })
        .collect()
}

/// The occurrences an entry runs in the window: none when it is disabled.
fn planned(entry: &Entry, from: DateTime<Utc>, to: DateTime<Utc>) -> BTreeSet<Occurrence> {
    if !entry.enabled {
        return BTreeSet::new();
    }
    occurrences(entry, from, to).collect()
}

/// The settings that differ, as text.
fn settings(a: &Entry, b: &Entry) -> Vec<(&'static str, String, String)> {
    let secs = |d: Option<std::time::Duration>| {
        d.map(|d| format!("{}s", d.as_secs()))
            .unwrap_or_else(|| "none".into())
    };
    let pairs: [(&'static str, String, String); 16] = [
        ("task", a.task.clone(), b.task.clone()),
        (
            "cron",
            a.cron.as_str().to_string(),
            b.cron.as_str().to_string(),
        ),
        (
            "timezone",
            a.timezone.name().to_string(),
            b.timezone.name().to_string(),
        ),
        ("enabled", a.enabled.to_string(), b.enabled.to_string()),
        (
            "args",
            Value::Object(a.args.clone()).to_string(),
            Value::Object(b.args.clone()).to_string(),
        ),
        (
            "mode",
            output::setting_text(&a.mode),
            output::setting_text(&b.mode),
        ),
        ("queue", a.queue.clone(), b.queue.clone()),
        ("timeout", secs(a.timeout), secs(b.timeout)),
        (
            "overlap",
            output::setting_text(&a.overlap),
            output::setting_text(&b.overlap),
        ),
        (
            "catch_up",
            output::setting_text(&a.catch_up),
            output::setting_text(&b.catch_up),
        ),
        (
            "catch_up_window",
            secs(Some(a.catch_up_window)),
            secs(Some(b.catch_up_window)),
        ),
        (
            "catch_up_max",
            a.catch_up_max.to_string(),
            b.catch_up_max.to_string(),
        ),
        ("jitter", secs(a.jitter), secs(b.jitter)),
        (
            "dst_skipped",
            output::setting_text(&a.dst_skipped),
            output::setting_text(&b.dst_skipped),
        ),
        (
            "dst_repeated",
            output::setting_text(&a.dst_repeated),
            output::setting_text(&b.dst_repeated),
        ),
        (
            "description",
            a.description.clone().unwrap_or_default(),
            b.description.clone().unwrap_or_default(),
        ),
    ];
    pairs.into_iter().filter(|(_, x, y)| x != y).collect()
}

fn write_table(
    report: &[EntryDiff],
    old: &str,
    new: &Path,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    writeln!(
        out,
        "{old} -> {}, occurrences in [{}, {})",
        new.display(),
        rfc3339::utc(from),
        rfc3339::utc(to)
    )?;
    let rows: Vec<Vec<String>> = report
        .iter()
        .map(|e| {
            vec![
                e.name.clone(),
                e.status.to_string(),
                e.added.len().to_string(),
                e.removed.len().to_string(),
                e.moved.len().to_string(),
                e.settings
                    .iter()
                    .map(|s| s.0)
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect();
    output::table(
        out,
        &["ENTRY", "STATUS", "ADDED", "REMOVED", "MOVED", "SETTINGS"],
        &rows,
    )?;
    for e in report.iter().filter(|e| e.changed()) {
        writeln!(out, "\n{} ({}):", e.name, e.status)?;
        for (k, a, b) in &e.settings {
            writeln!(out, "  {k}: {a} -> {b}")?;
        }
        let mut list = |label: &str, items: Vec<String>, total: usize| -> std::io::Result<()> {
            if total == 0 {
                return Ok(());
            }
            writeln!(out, "  {label} {total}:")?;
            for i in items {
                writeln!(out, "    {i}")?;
            }
            if total > SHOWN {
                writeln!(out, "    … and {} more", total - SHOWN)?;
            }
            Ok(())
        };
        list(
            "added",
            e.added.iter().take(SHOWN).map(shown).collect(),
            e.added.len(),
        )?;
        list(
            "removed",
            e.removed.iter().take(SHOWN).map(shown).collect(),
            e.removed.len(),
        )?;
        list(
            "moved",
            e.moved
                .iter()
                .take(SHOWN)
                .map(|(a, b)| format!("{} -> {}", shown(a), shown(b)))
                .collect(),
            e.moved.len(),
        )?;
    }
    if report.iter().all(|e| !e.changed()) {
        writeln!(
            out,
            "\nNo change: every entry runs at the same instants with the same settings."
        )?;
    }
    Ok(())
}
