//! `conecta tasks list`: the catalog of task and job names, from the same definitions the
//! schedule file, `run-task` and `dispatch` check arguments against. It is what a user reads
//! to write a schedule entry.

use std::io::Write;

use serde_json::{Value, json};

use super::args::{OutputFormat, TasksCommand};
use super::{Context, ExitStatus, output};
use crate::tasks::{self, ArgDef, Kind, TaskDef};

pub fn run(_ctx: &Context, cmd: &TasksCommand, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let TasksCommand::List { format } = cmd;
    let registry = tasks::registry();
    let has_body = |def: &TaskDef| registry.get(def.name).is_some();
    match format {
        OutputFormat::Json => {
            let items: Vec<Value> = tasks::CATALOG
                .iter()
                .map(|def| {
                    json!({
                        "name": def.name,
                        "kind": kind(def.kind),
                        "queue": def.queue,
                        "tries": def.tries,
                        "backoff": def.backoff,
                        "timeout": def.timeout,
                        "unique": def.unique,
                        "arguments": def.args.iter().map(|a| json!({
                            "name": a.name,
                            "type": a.kind.name(),
                            "default": a.default,
                        })).collect::<Vec<_>>(),
                        "summary": def.summary,
                        "aliases": tasks::aliases_of(def.name).collect::<Vec<_>>(),
                        "implemented": has_body(def),
                    })
                })
                .collect();
            serde_json::to_writer_pretty(&mut *out, &items)?;
            writeln!(out)?;
        }
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = tasks::CATALOG
                .iter()
                .map(|def| {
                    vec![
                        def.name.to_string(),
                        kind(def.kind).to_string(),
                        def.queue.unwrap_or("inline").to_string(),
                        match (def.kind, def.tries) {
                            (Kind::Task, _) => "-".into(),
                            (Kind::Job, None) => "worker".into(),
                            (Kind::Job, Some(t)) => t.to_string(),
                        },
                        def.timeout
                            .map_or(default_timeout(def.kind).into(), |t| format!("{t}s")),
                        def.unique.unwrap_or("-").to_string(),
                        arguments(def.args),
                        {
                            let aliases: Vec<&str> = tasks::aliases_of(def.name).collect();
                            let mut text = def.summary.to_string();
                            if !aliases.is_empty() {
                                text.push_str(&format!(" (Laravel: {})", aliases.join(", ")));
                            }
                            if !has_body(def) {
                                text.push_str(" (no body in this build)");
                            }
                            text
                        },
                    ]
                })
                .collect();
            output::table(
                out,
                &[
                    "NAME",
                    "KIND",
                    "QUEUE",
                    "TRIES",
                    "TIMEOUT",
                    "UNIQUE",
                    "ARGUMENTS",
                    "SUMMARY",
                ],
                &rows,
            )?;
            writeln!(
                out,
                "\nTasks run inline (the scheduler, run-task); jobs on a queue. \"worker\": the worker's --tries/--timeout; \"entry\": the schedule entry's timeout."
            )?;
        }
    }
    Ok(ExitStatus::Success)
}

fn kind(k: Kind) -> &'static str {
    match k {
        Kind::Task => "task",
        Kind::Job => "job",
    }
}

fn default_timeout(k: Kind) -> &'static str {
    match k {
        Kind::Task => "entry",
        Kind::Job => "worker",
    }
}

/// `name:type` or `name:type=default`, comma-separated.
fn arguments(args: &[ArgDef]) -> String {
    if args.is_empty() {
        return "-".into();
    }
    args.iter()
        .map(|a| match a.default {
            Some(d) => format!("{}:{}={d}", a.name, a.kind.name()),
            None => format!("{}:{}", a.name, a.kind.name()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
