//! Retention: chunked deletes of rows past their keep-by date, for `model:prune` and
//! `outbox prune`. Each statement deletes at most one chunk, so a prune of millions of rows
//! never holds locks for long and can show its progress.

use chrono::{DateTime, NaiveDateTime, Timelike, Utc};

use super::{Db, Query, Result};

/// What can be pruned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Published outbox messages, by `processed_at`.
    Outbox,
    /// Failed jobs, by `failed_at`.
    FailedJobs,
    /// Finished or cancelled batches, by when they ended.
    Batches,
    /// Finished schedule runs, by their occurrence.
    ScheduleRuns,
    /// Per-minute job counts, by their minute.
    QueueMinutes,
}

/// Every target, in the order `model:prune` runs them.
pub const ALL: [Target; 5] = [
    Target::Outbox,
    Target::FailedJobs,
    Target::Batches,
    Target::ScheduleRuns,
    Target::QueueMinutes,
];

enum Bound {
    Seconds(i64),
    Minutes(i64),
    Millis(i64),
    Timestamp(NaiveDateTime),
}

impl Target {
    /// Its name in reports and configuration.
    pub fn name(self) -> &'static str {
        match self {
            Target::Outbox => "outbox_messages",
            Target::FailedJobs => "failed_jobs",
            Target::Batches => "job_batches",
            Target::ScheduleRuns => "schedule_runs",
            Target::QueueMinutes => "queue_minutes",
        }
    }

    fn condition(self) -> &'static str {
        match self {
            Target::Outbox => "processed_at IS NOT NULL AND processed_at < ?",
            Target::FailedJobs => "failed_at < ?",
            Target::Batches => "COALESCE(finished_at, cancelled_at) < ?",
            Target::ScheduleRuns => "finished_at IS NOT NULL AND due_at < ?",
            Target::QueueMinutes => "minute < ?",
        }
    }

    fn bound(self, before: DateTime<Utc>) -> Bound {
        match self {
            Target::Outbox | Target::Batches => Bound::Seconds(before.timestamp()),
            Target::ScheduleRuns => Bound::Millis(before.timestamp_millis()),
            Target::QueueMinutes => Bound::Minutes(super::queue_minutes::minute_of(before)),
            Target::FailedJobs => Bound::Timestamp(
                before
                    .naive_utc()
                    .with_nanosecond(0)
                    .unwrap_or(before.naive_utc()),
            ),
        }
    }
}

impl Bound {
    fn bind(self, query: Query<'_>) -> Query<'_> {
        match self {
            Bound::Seconds(v) | Bound::Minutes(v) | Bound::Millis(v) => query.bind(v),
            Bound::Timestamp(v) => query.bind(v),
        }
    }
}

/// How many rows of `target` are older than `before`.
pub async fn count(db: &Db, target: Target, before: DateTime<Utc>) -> Result<u64> {
    let query = db.query(format!(
        "SELECT COUNT(*) FROM {} WHERE {}",
        target.name(),
        target.condition()
    ));
    let n: i64 = target.bound(before).bind(query).scalar(db).await?;
    Ok(n as u64)
}

/// Deletes up to `chunk` rows of `target` older than `before`; returns how many. Loop until
/// it returns less than `chunk`.
pub async fn delete_chunk(
    db: &Db,
    target: Target,
    before: DateTime<Utc>,
    chunk: u64,
) -> Result<u64> {
    let delete = db
        .backend()
        .delete_limited(target.name(), target.condition());
    let n = target
        .bound(before)
        .bind(db.query(delete))
        .bind(chunk as i64)
        .execute(db)
        .await?;
    Ok(n)
}

/// Deletes every row of `target` older than `before`, chunk by chunk, calling `progress`
/// with the running total; returns how many.
pub async fn all(
    db: &Db,
    target: Target,
    before: DateTime<Utc>,
    chunk: u64,
    mut progress: impl FnMut(u64),
) -> Result<u64> {
    let mut total = 0;
    loop {
        let n = delete_chunk(db, target, before, chunk).await?;
        total += n;
        progress(total);
        if n < chunk {
            return Ok(total);
        }
    }
}
