//! `outbox:process` (docs/outbox.md): claim unprocessed outbox rows in id order, publish each (enqueue
//! the job its event type maps to, and `XADD` it to a Redis stream when one is configured),
//! mark them processed. A failed publish records `last_error` and backs off exponentially.
//! Also `replay`, which publishes a range again, processed or not.

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::queue::{JobContext, JobError, NewJob, Registry, Runtime};
use crate::store::outbox::{self, Message};

/// How long a claim protects its rows; after it (plus [`crate::clock::MAX_CLOCK_SKEW`], so a
/// processor whose clock runs fast does not take over rows another one still holds), a crashed
/// processor's rows are taken over.
pub const RECLAIM_AFTER: TimeDelta = TimeDelta::minutes(5);

/// The job an event type is published as, and its queue.
pub fn route(event_type: &str) -> Option<&'static str> {
    match event_type {
        "OrderCancelled" => Some("SendOrderCancellation"),
        "AppointmentReminderDue" => Some("SendAppointmentReminder"),
        "PaymentNeedsReview" => Some("NotifyPaymentReview"),
        "ExportReady" | "ReportReady" => Some("SendDownloadLink"),
        _ => None,
    }
}

/// The delay before retrying a message that failed `attempts` times: 10 s doubling, at most
/// an hour.
pub fn backoff(attempts: i64) -> TimeDelta {
    let exp = attempts.clamp(1, 20) - 1;
    TimeDelta::seconds((10i64 << exp).min(3_600))
}

/// `outbox:process` arguments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// Rows per claim (default 500).
    #[serde(default)]
    pub batch: Option<i64>,
    /// Stop after this many rows (default: until none is left).
    #[serde(default)]
    pub limit: Option<u64>,
}

/// What one processing pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Messages published and marked processed.
    pub published: u64,
    /// Messages whose publish failed (they will be retried).
    pub failed: u64,
}

/// Why a message could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Its event type maps to no job.
    #[error("no job is mapped to event type {0:?}; add it to tasks::outbox::route")]
    Unmapped(String),
    /// Its payload is not JSON.
    #[error("payload of outbox message {id} is not JSON: {source}")]
    NotJson {
        /// The message.
        id: i64,
        /// Why.
        source: serde_json::Error,
    },
    /// The job it maps to is missing from the catalog.
    #[error("{0} is not in the job catalog")]
    NotInCatalog(&'static str),
    /// Adding it to the Redis stream failed.
    #[error("outbox stream: {0}")]
    Stream(#[from] redis::RedisError),
}

/// The job a message is published as (its payload plus `outbox_id`).
fn job_for(m: &Message) -> Result<NewJob, PublishError> {
    let job = route(&m.event_type).ok_or_else(|| PublishError::Unmapped(m.event_type.clone()))?;
    let mut data: Value = serde_json::from_str(&m.payload)
        .map_err(|source| PublishError::NotJson { id: m.id, source })?;
    if let Value::Object(map) = &mut data {
        map.insert("outbox_id".into(), json!(m.id));
    } else {
        data = json!({ "outbox_id": m.id, "event": data });
    }
    let def = super::find(job).ok_or(PublishError::NotInCatalog(job))?;
    Ok(def.new_job(data))
}

/// Adds `messages` to the configured Redis stream, if any.
async fn stream(rt: &Runtime, messages: &[&Message]) -> Result<(), PublishError> {
    let Some(name) = &rt.settings.outbox_stream else {
        return Ok(());
    };
    let client = redis::Client::open(rt.settings.redis_url.as_str())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut pipe = redis::pipe();
    for m in messages {
        pipe.cmd("XADD")
            .arg(name)
            .arg("*")
            .arg("id")
            .arg(m.id)
            .arg("event_type")
            .arg(&m.event_type)
            .arg("aggregate_type")
            .arg(&m.aggregate_type)
            .arg("aggregate_id")
            .arg(&m.aggregate_id)
            .arg("payload")
            .arg(&m.payload)
            .ignore();
    }
    Ok(pipe.query_async::<()>(&mut conn).await?)
}

/// What [`publish`] did with a batch.
#[derive(Debug, Default)]
pub struct Published {
    /// Ids published.
    pub ok: Vec<i64>,
    /// Ids not published, and why.
    pub failed: Vec<(i64, String)>,
    /// True when they failed because Redis or the database was away: they are retried as soon
    /// as it is back, without counting against them.
    pub outage: bool,
}

/// Publishes `messages`: to the stream, then as jobs in one bulk enqueue.
pub async fn publish(rt: &Runtime, messages: &[Message]) -> Published {
    let mut failed = Vec::new();
    let mut ready = Vec::new();
    let mut jobs = Vec::new();
    for m in messages {
        match job_for(m) {
            Ok(job) => {
                ready.push(m);
                jobs.push(job);
            }
            Err(why) => failed.push((m.id, why.to_string())),
        }
    }
    let outcome = match stream(rt, &ready).await {
        Ok(()) => rt.dispatch_bulk(jobs).await.map_err(|e| {
            let outage = matches!(
                crate::outage::Classify::kind(&e),
                crate::outage::ErrorKind::Unavailable(_)
            );
            (e.to_string(), outage)
        }),
        Err(e) => {
            let outage = match &e {
                PublishError::Stream(r) => matches!(
                    crate::outage::Classify::kind(r),
                    crate::outage::ErrorKind::Unavailable(_)
                ),
                _ => false,
            };
            Err((e.to_string(), outage))
        }
    };
    match outcome {
        Ok(_) => Published {
            ok: ready.iter().map(|m| m.id).collect(),
            failed,
            outage: false,
        },
        Err((why, outage)) => {
            failed.extend(ready.iter().map(|m| (m.id, why.clone())));
            Published {
                ok: Vec::new(),
                failed,
                outage,
            }
        }
    }
}

/// Claims and publishes until nothing is left (or `limit` rows), `batch` rows at a time.
/// `on_batch` gets the running count of rows handled.
pub async fn process(
    rt: &Runtime,
    batch: i64,
    limit: Option<u64>,
    mut on_batch: impl FnMut(u64),
) -> Result<Report, crate::store::StoreError> {
    let owner = uuid::Uuid::now_v7().simple().to_string();
    let mut report = Report::default();
    loop {
        let handled = report.published + report.failed;
        let take = match limit {
            Some(l) if handled >= l => break,
            Some(l) => (l - handled).min(batch.max(1) as u64) as i64,
            None => batch.max(1),
        };
        let now = rt.clock.now();
        let claimed = outbox::claim(&rt.db, take, &owner, now, RECLAIM_AFTER).await?;
        if claimed.is_empty() {
            break;
        }
        let Published {
            ok: published,
            failed,
            outage,
        } = publish(rt, &claimed).await;
        let now = rt.clock.now();
        outbox::mark_processed(&rt.db, &published, &owner, now).await?;
        for (id, why) in &failed {
            let attempts = claimed
                .iter()
                .find(|m| m.id == *id)
                .map_or(1, |m| m.attempts);
            // An outage is not the message's fault: it is available again at once and the
            // next pass (the next minute) publishes it, instead of waiting out a backoff.
            let retry_at = if outage { now } else { now + backoff(attempts) };
            if !outage {
                tracing::warn!(outbox_id = id, attempts, "outbox publish failed: {why}");
            }
            outbox::mark_failed(&rt.db, *id, &owner, why, retry_at).await?;
        }
        if outage {
            tracing::warn!(
                messages = failed.len(),
                "outbox publish paused: a dependency is away; the messages stay pending: {}",
                failed.first().map_or("", |(_, w)| w.as_str())
            );
        }
        report.published += published.len() as u64;
        report.failed += failed.len() as u64;
        on_batch(report.published + report.failed);
        if outage || (claimed.len() as i64) < take {
            break;
        }
    }
    Ok(report)
}

/// Publishes messages `from..=to` again, processed or not, in chunks; returns how many were
/// published and the failures. Replayed rows are not re-marked: they keep their history.
pub async fn replay(
    rt: &Runtime,
    from: i64,
    to: i64,
    mut on_chunk: impl FnMut(u64),
) -> Result<(u64, Vec<(i64, String)>), crate::store::StoreError> {
    let mut published = 0;
    let mut failures = Vec::new();
    let mut start = from;
    while start <= to {
        let end = to.min(start.saturating_add(499));
        let messages = outbox::range(&rt.db, start, end).await?;
        let done = publish(rt, &messages).await;
        published += done.ok.len() as u64;
        failures.extend(done.failed);
        on_chunk(published + failures.len() as u64);
        start = end.saturating_add(1);
    }
    Ok((published, failures))
}

/// Registers `outbox:process`.
pub fn register(r: &mut Registry) {
    r.register("outbox:process", |ctx: JobContext, a: Args| async move {
        let bar = ctx.rt.settings.progress.bar("outbox:process", None);
        let report = process(&ctx.rt, a.batch.unwrap_or(500), a.limit, |n| bar.set(n))
            .await
            .map_err(super::retry)?;
        if report.published + report.failed > 0 {
            tracing::info!(
                published = report.published,
                failed = report.failed,
                "outbox processed"
            );
        }
        Ok::<(), JobError>(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let secs: Vec<i64> = [1, 2, 3, 9, 30]
            .iter()
            .map(|a| backoff(*a).num_seconds())
            .collect();
        assert_eq!(secs, [10, 20, 40, 2_560, 3_600]);
    }
}
