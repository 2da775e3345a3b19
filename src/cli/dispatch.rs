//! `conecta dispatch JOB`: enqueue one job by hand; prints its id, or "duplicate".

use std::io::Write;

use super::args::DispatchArgs;
use super::{Context, ExitStatus, UsageError};
use crate::queue::runtime::payload_arg;
use crate::queue::{Enqueued, NewJob, Unique, UniqueUntil};
use crate::suggest::did_you_mean;

pub async fn run(
    ctx: &Context,
    args: &DispatchArgs,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let known = crate::tasks::find(&args.job).is_some();
    let rt = ctx.runtime().await?;
    if !known && rt.registry.get(&args.job).is_none() {
        let mut names: Vec<String> = crate::tasks::names().map(String::from).collect();
        names.extend(rt.registry.names().into_iter().map(String::from));
        let hint = did_you_mean(&args.job, names.iter().map(|s| s.as_str()))
            .map(|s| format!("did you mean \"{s}\"?"))
            .unwrap_or_else(|| format!("known jobs: {}", names.join(", ")));
        return Err(UsageError::new(format!("unknown job \"{}\"", args.job), Some(hint)).into());
    }
    let queue = args.queue.trim();
    if queue.is_empty() {
        return Err(UsageError::new(
            "--queue is empty: a job on a queue without a name is one no worker takes",
            Some("leave --queue out for `default`, or name one, e.g. --queue high".to_string()),
        )
        .into());
    }
    let data =
        payload_arg(args.payload.as_deref()).map_err(|e| UsageError::new(e.to_string(), None))?;
    if let Some(def) = crate::tasks::find(&args.job) {
        let Some(map) = data.as_object() else {
            return Err(UsageError::new(
                format!(
                    "--payload for \"{}\" must be a JSON object, got: {data}",
                    def.name
                ),
                Some(format!(
                    "e.g. --payload '{{\"{}\": …}}'",
                    def.args.first().map_or("key", |a| a.name)
                )),
            )
            .into());
        };
        def.check_args(map)
            .map_err(|p| UsageError::new(format!("--payload: {}", p.message), p.hint))?;
    }
    let seconds = |flag: &str, v: u64| {
        crate::duration::bounded(std::time::Duration::from_secs(v), &format!("{v}s"))
            .map(|d| d.as_secs())
            .map_err(|e| UsageError::new(format!("{flag}: {e}"), None))
    };
    let timeout = args.timeout.map(|t| seconds("--timeout", t)).transpose()?;
    let backoff = match &args.backoff {
        Some(list) => Some(
            list.iter()
                .map(|b| seconds("--backoff", *b))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => None,
    };
    let delay = match &args.delay {
        Some(d) => crate::duration::parse(d)
            .map_err(|e| UsageError::new(format!("--delay: {e}"), None))?
            .as_secs(),
        None => 0,
    };
    let unique = match (&args.unique_key, &args.unique_for) {
        (Some(key), Some(ttl)) => {
            let ttl = crate::duration::parse(ttl)
                .map_err(|e| UsageError::new(format!("--unique-for: {e}"), None))?;
            let until: UniqueUntil = args
                .unique_until
                .parse()
                .map_err(|e| UsageError::new(format!("--unique-until: {e}"), None))?;
            Some(Unique {
                key: key.clone(),
                ttl: ttl.as_secs().max(1),
                until,
            })
        }
        _ => None,
    };
    let job = NewJob {
        job: args.job.clone(),
        data,
        queue: queue.to_string(),
        delay,
        tries: args.tries,
        timeout,
        backoff,
        unique,
        batch_id: None,
    };
    match rt.dispatch(job).await? {
        Enqueued::Job(id) => writeln!(out, "{id}")?,
        Enqueued::Duplicate => writeln!(out, "duplicate")?,
    }
    Ok(ExitStatus::Success)
}
