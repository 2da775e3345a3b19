//! `conecta schedule explain NAME [--at T] [--count N]`: why an entry runs when it does around
//! T, in words and in JSON: its cron fields and what each occurrence matched, the zone and its
//! offset, the day-of-month/day-of-week rule, the DST rule applied to each occurrence a clock
//! change touches, jitter and the catch-up policy.

use std::io::Write;

use chrono::{DateTime, Datelike, TimeDelta, Timelike, Utc};
use serde_json::{Value, json};

use super::args::OutputFormat;
use super::{Context, ExitStatus, UsageError, instant_arg, output};
use crate::rfc3339;
use crate::schedule::planner::jitter;
use crate::schedule::{CatchUp, Entry, Occurrence, dst, occurrences};

/// The cron fields, in order.
const FIELDS: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];

pub fn run(
    ctx: &Context,
    name: &str,
    at: Option<&str>,
    count: usize,
    format: OutputFormat,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let at = match at {
        Some(t) => instant_arg("--at", t)?,
        None => ctx.clock.now(),
    };
    let schedule = ctx.schedule()?;
    let Some(entry) = schedule.entries.iter().find(|e| e.name == name) else {
        let names = schedule.entries.iter().map(|e| e.name.as_str());
        let hint = crate::suggest::did_you_mean(name, names)
            .map(|n| format!("did you mean \"{n}\"? (`conecta schedule list` shows every entry)"))
            .or_else(|| Some("`conecta schedule list` shows every entry".to_string()));
        return Err(UsageError::new(format!("no schedule entry named \"{name}\""), hint).into());
    };
    let count = count.clamp(1, 1000);
    let upcoming: Vec<Occurrence> = occurrences(entry, at, at + crate::schedule::NEXT_HORIZON)
        .take(count)
        .collect();
    let doc = explain(entry, at, &upcoming);
    match format {
        OutputFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?,
        OutputFormat::Table => write_words(&doc, out)?,
    }
    Ok(ExitStatus::Success)
}

fn explain(entry: &Entry, at: DateTime<Utc>, upcoming: &[Occurrence]) -> Value {
    let parts: Vec<&str> = if entry.cron.interval().is_some() {
        Vec::new()
    } else {
        entry.cron.as_str().split_whitespace().collect()
    };
    let fields: Vec<Value> = if parts.is_empty() {
        Vec::new()
    } else {
        FIELDS
            .iter()
            .zip(parts.iter().chain(std::iter::repeat(&"*")))
            .map(|(f, v)| json!({"field": f, "value": v, "meaning": field_words(f, v)}))
            .collect()
    };
    let restricted = |i: usize| parts.get(i).is_some_and(|v| *v != "*" && *v != "?");
    let day_rule = if restricted(2) && restricted(4) {
        "day-of-month and day-of-week are both restricted: a day matching either one runs (as in Vixie cron)"
    } else if restricted(2) {
        "only day-of-month is restricted: the days it names run"
    } else if restricted(4) {
        "only day-of-week is restricted: the weekdays it names run"
    } else {
        "every day runs"
    };
    let dst_rule = if let Some(every) = entry.cron.interval() {
        format!(
            "`every` counts elapsed time: a run every {}s since {}, which no clock change moves",
            every.period_ms / 1000,
            DateTime::from_timestamp_millis(every.anchor_ms)
                .map(rfc3339::utc)
                .unwrap_or_default()
        )
    } else if entry.cron.every_hour() {
        "the hour field matches every hour, so this entry follows elapsed time: a skipped hour has no runs and a repeated hour runs twice (dst_skipped and dst_repeated do not apply)".to_string()
    } else {
        format!(
            "fixed-hour entry: a local time skipped by spring forward follows dst_skipped = \"{}\", one repeated by fall back follows dst_repeated = \"{}\"",
            output::setting_text(&entry.dst_skipped),
            output::setting_text(&entry.dst_repeated)
        )
    };
    let jitter_words = match entry.jitter {
        Some(j) => format!(
            "each occurrence starts up to {}s late, by a delay derived from the entry and the instant, the same on every replica and in simulation",
            j.as_secs()
        ),
        None => "none: each occurrence starts at its due instant".to_string(),
    };
    let window = entry.catch_up_window.as_secs();
    let catch_up = match entry.catch_up {
        CatchUp::Skip => "skip: occurrences missed while no scheduler ran are not run".to_string(),
        CatchUp::Latest => format!(
            "latest: after downtime, the most recent occurrence missed within the last {window}s runs once"
        ),
        CatchUp::All => format!(
            "all: after downtime, every occurrence missed within the last {window}s runs, at most {}",
            entry.catch_up_max
        ),
    };
    // With both day fields restricted, each occurrence says which of them let its day run.
    let day_tests = (parts.len() == 5 && restricted(2) && restricted(4)).then(|| {
        let cron = |dom: &str, dow: &str| {
            crate::schedule::CronSpec::parse(&format!(
                "{} {} {dom} {} {dow}",
                parts[0], parts[1], parts[3]
            ))
            .ok()
        };
        (cron(parts[2], "*"), cron("*", parts[4]))
    });
    let occurrences: Vec<Value> = upcoming
        .iter()
        .map(|o| {
            let mut v = occurrence(entry, o);
            if let Some((Some(dom), Some(dow))) = &day_tests {
                let date = o.due.with_timezone(&entry.timezone).date_naive();
                let by = match (dom.matches_day(date), dow.matches_day(date)) {
                    (true, true) => "both day-of-month and day-of-week",
                    (true, false) => "day-of-month",
                    _ => "day-of-week",
                };
                v["day_matched_by"] = json!(by);
                v["matched"] = json!(format!("{} (by {by})", v["matched"].as_str().unwrap_or("")));
            }
            v
        })
        .collect();
    // Clock changes over the occurrences shown, including those that leave a day without a run.
    let until = upcoming.last().map(|o| o.due).unwrap_or(at) + TimeDelta::days(1);
    let changes: Vec<Value> = dst::transitions(entry.timezone, at, until)
        .iter()
        .filter_map(|tr| dst::impact(entry, tr))
        .map(|i| json!({"date": i.date.to_string(), "detail": i.detail}))
        .collect();
    json!({
        "dst_changes": changes,
        "name": entry.name,
        "task": entry.task,
        "enabled": entry.enabled,
        "cron": entry.cron.as_str(),
        "timezone": entry.timezone.name(),
        "at": rfc3339::utc(at),
        "fields": fields,
        "day_rule": day_rule,
        "dst_rule": dst_rule,
        "jitter": jitter_words,
        "catch_up": catch_up,
        "overlap": output::setting_text(&entry.overlap),
        "occurrences": occurrences,
    })
}

/// One occurrence: its instants, what the cron matched, and the DST change touching it.
fn occurrence(entry: &Entry, o: &Occurrence) -> Value {
    let local = o.due.with_timezone(&entry.timezone);
    let matched = if entry.cron.interval().is_some() {
        format!(
            "a multiple of the interval, {}",
            local.format("%A %H:%M:%S")
        )
    } else {
        format!(
            "minute {}, hour {}, day {}, month {} ({}), {}",
            local.minute(),
            local.hour(),
            local.day(),
            local.month(),
            local.format("%B"),
            local.format("%A")
        )
    };
    let dst = dst::transitions(
        entry.timezone,
        o.due - TimeDelta::hours(26),
        o.due + TimeDelta::hours(26),
    )
    .iter()
    .filter(|tr| (tr.at - o.due).num_hours().abs() <= 3)
    .find_map(|tr| dst::impact(entry, tr))
    .map(|i| i.detail);
    let mut v = json!({
        "due": rfc3339::utc(o.due),
        "local": rfc3339::local(o.due, o.offset_seconds),
        "zone": local.format("%Z").to_string(),
        "matched": matched,
        "dst": dst,
    });
    if entry.jitter.is_some() {
        let delay = jitter(entry, o.due);
        v["fire_at"] = json!(rfc3339::utc(o.due + delay));
        v["jitter_seconds"] = json!(delay.num_seconds());
    }
    v
}

fn field_words(field: &str, value: &str) -> String {
    if value == "*" || value == "?" {
        return format!("every {field}");
    }
    if let Some(step) = value.strip_prefix("*/") {
        return format!("every {step}th {field}, counting from the first");
    }
    format!("{field} {value}")
}

fn write_words(doc: &Value, out: &mut dyn Write) -> std::io::Result<()> {
    let s = |k: &str| doc[k].as_str().unwrap_or("").to_string();
    let when = if s("cron").starts_with("every ") {
        s("cron")
    } else {
        format!("on cron \"{}\" read in {}", s("cron"), s("timezone"))
    };
    writeln!(
        out,
        "{} runs {} {}{}.",
        s("name"),
        s("task"),
        when,
        if doc["enabled"] == false {
            " (disabled: it never runs until enabled)"
        } else {
            ""
        }
    )?;
    let fields: Vec<String> = doc["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| f["meaning"].as_str().unwrap_or("").to_string())
        .collect();
    if !fields.is_empty() {
        writeln!(out, "  Fields: {}.", fields.join("; "))?;
        writeln!(out, "  Days: {}.", s("day_rule"))?;
    }
    writeln!(out, "  DST: {}.", s("dst_rule"))?;
    writeln!(out, "  Jitter: {}.", s("jitter"))?;
    writeln!(out, "  Catch-up: {}.", s("catch_up"))?;
    writeln!(out, "  Overlap: {}.", s("overlap"))?;
    for c in doc["dst_changes"].as_array().into_iter().flatten() {
        writeln!(
            out,
            "  Clock change on {}: {}.",
            c["date"].as_str().unwrap_or(""),
            c["detail"].as_str().unwrap_or("")
        )?;
    }
    writeln!(out, "  From {}:", s("at"))?;
    for o in doc["occurrences"].as_array().into_iter().flatten() {
        let g = |k: &str| o[k].as_str().unwrap_or("").to_string();
        write!(
            out,
            "    {}  {} {}: matched {}",
            g("due"),
            g("local"),
            g("zone"),
            g("matched")
        )?;
        if let Some(f) = o["fire_at"].as_str() {
            write!(out, "; starts at {f} (jitter {}s)", o["jitter_seconds"])?;
        }
        writeln!(out)?;
        if let Some(d) = o["dst"].as_str() {
            writeln!(out, "      DST: {d}")?;
        }
    }
    Ok(())
}
