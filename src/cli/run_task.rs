//! `conecta run-task NAME`: one task once, through the scheduler's code path, recorded in
//! `schedule_runs` as a manual run. Exit 1 with the error when it fails.

use std::io::Write;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::args::RunTaskArgs;
use super::{Context, ExitStatus, UsageError, instant_arg};
use crate::clock::SimulatedClock;
use crate::schedule::{Mode, scheduler};
use crate::store::schedule_runs::{self, Claim, Outcome};
use crate::suggest::did_you_mean;
use crate::tasks;

/// `--arg key=value`: a whole number or true/false when it reads as one, else text.
fn parse_value(text: &str) -> Value {
    if let Ok(n) = text.parse::<u64>() {
        return Value::from(n);
    }
    match text {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(text.to_string()),
    }
}

pub async fn run(
    ctx: &Context,
    args: &RunTaskArgs,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let Some(def) = tasks::find(&args.name) else {
        let hint = did_you_mean(&args.name, tasks::names())
            .map(|s| format!("did you mean \"{s}\"?"))
            .unwrap_or_else(|| {
                format!(
                    "known tasks: {}",
                    tasks::names().collect::<Vec<_>>().join(", ")
                )
            });
        return Err(UsageError::new(format!("unknown task \"{}\"", args.name), Some(hint)).into());
    };
    let mut task_args = Map::new();
    for kv in &args.args {
        let Some((key, value)) = kv.split_once('=') else {
            return Err(
                UsageError::new(format!("--arg expects key=value, got: {kv:?}"), None).into(),
            );
        };
        task_args.insert(key.trim().to_string(), parse_value(value.trim()));
    }
    if let Some(t) = args.tenant {
        task_args.insert("tenant".into(), Value::from(t));
    }
    def.check_args(&task_args)
        .map_err(|p| UsageError::new(p.message, p.hint))?;
    let mut rt = ctx
        .runtime()
        .await?
        .with_progress(crate::progress::Progress::on_terminal());
    if let Some(at) = &args.at {
        rt.clock = Arc::new(SimulatedClock::new(instant_arg("--at", at)?, 1.0));
    }
    let now = rt.clock.now();
    let shown = Value::Object(task_args.clone());
    if args.dry_run {
        writeln!(
            out,
            "would run {} with {shown} as of {}",
            def.name,
            crate::rfc3339::utc(now)
        )?;
        return Ok(ExitStatus::Success);
    }
    let runner = scheduler::runner_name();
    let claim = Claim {
        entry: def.name,
        task: def.name,
        due: now,
        manual: true,
        runner: &runner,
    };
    let Some(id) = schedule_runs::claim(&rt.db, &claim, now).await? else {
        return Err(UsageError::new(
            format!(
                "{} already has a run recorded at {}",
                def.name,
                crate::rfc3339::utc(now)
            ),
            Some("try again, or pick another --at".to_string()),
        )
        .into());
    };
    let (outcome, error) = scheduler::execute(
        &rt,
        def.name,
        &task_args,
        Mode::Inline,
        "default",
        None,
        &|| true,
    )
    .await;
    schedule_runs::finish(&rt.db, id, outcome, error.as_deref(), rt.clock.now()).await?;
    match (outcome, error) {
        (Outcome::Succeeded, _) => {
            writeln!(out, "{} succeeded (run {id})", def.name)?;
            Ok(ExitStatus::Success)
        }
        (outcome, error) => {
            say!(
                "error: {} {}: {}",
                def.name,
                outcome.as_str(),
                error.unwrap_or_default()
            );
            Ok(ExitStatus::Failure)
        }
    }
}
