//! `conecta dispatch JOB`: enqueue one job by hand; prints its id, or "duplicate". The checks
//! are `tasks::dispatch`'s, shared with `POST /api/dispatch`.

use std::io::Write;

use super::args::DispatchArgs;
use super::{Context, ExitStatus, UsageError};
use crate::queue::Enqueued;
use crate::queue::runtime::payload_arg;
use crate::tasks::dispatch::{Request, Spelling};

pub async fn run(
    ctx: &Context,
    args: &DispatchArgs,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let payload =
        payload_arg(args.payload.as_deref()).map_err(|e| UsageError::new(e.to_string(), None))?;
    let request = Request {
        job: args.job.clone(),
        payload: Some(payload),
        queue: args.queue.clone(),
        delay: args.delay.clone(),
        unique_key: args.unique_key.clone(),
        unique_for: args.unique_for.clone(),
        unique_until: args.unique_until.clone(),
        tries: args.tries,
        timeout: args.timeout,
        backoff: args.backoff.clone(),
    };
    // Checked before connecting: a typo needs no server to be reported.
    let job = request
        .build(&crate::tasks::registry(), Spelling::Flags)
        .map_err(|r| UsageError::new(r.message, r.hint))?;
    let rt = ctx.runtime().await?;
    match rt.dispatch(job).await? {
        Enqueued::Job(id) => writeln!(out, "{id}")?,
        Enqueued::Duplicate => writeln!(out, "duplicate")?,
    }
    Ok(ExitStatus::Success)
}
