//! `diagnostics:noop`, `diagnostics:sleep {ms}`, `diagnostics:fail {message}`: smoke tests of
//! a live worker pool and the benchmark workload. Harmless in production.

use chrono::TimeDelta;
use serde::Deserialize;

use crate::queue::{JobContext, JobError, Registry};

/// Any payload at all.
#[derive(Debug, Deserialize)]
pub struct Anything(#[allow(dead_code)] serde_json::Value);

/// `diagnostics:sleep`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sleep {
    /// How long, in milliseconds (on the job's clock).
    pub ms: u64,
}

/// `diagnostics:fail`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fail {
    /// The failure message.
    #[serde(default = "default_message")]
    pub message: String,
}

fn default_message() -> String {
    "diagnostics:fail was asked to fail".into()
}

/// Registers the three diagnostics jobs.
pub fn register(r: &mut Registry) {
    r.register("diagnostics:noop", |_ctx: JobContext, _p: Anything| async {
        Ok(())
    });
    r.register(
        "diagnostics:sleep",
        |ctx: JobContext, p: Sleep| async move {
            let until = ctx.clock.now() + TimeDelta::milliseconds(p.ms as i64);
            ctx.clock.sleep_until(until).await;
            Ok(())
        },
    );
    r.register("diagnostics:fail", |_ctx: JobContext, p: Fail| async move {
        Err(JobError::Retry(p.message))
    });
}
