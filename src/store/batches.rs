//! `job_batches` (Laravel's columns): fan-out progress, kept exact under concurrent completion
//! by single-statement counter updates, and finished exactly once.
//!
//! A batch is created *dispatching*: jobs are counted in before they are enqueued, duplicates
//! counted out after, and the batch is sealed when the fan-out is done. It can only finish
//! once sealed and every job has succeeded or failed (`pending_jobs <= failed_jobs`); the
//! caller whose update finished it gets `true` and enqueues the batch's `then` job, so that
//! job is enqueued exactly once.

use super::{Db, Result, Row, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// One batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Batch {
    /// Its id (a uuid).
    pub id: String,
    /// What it is, e.g. `analytics:sync 2026-11-27`.
    pub name: String,
    /// Jobs enqueued in it.
    pub total_jobs: i64,
    /// Jobs not yet succeeded (failed ones included, as in Laravel).
    pub pending_jobs: i64,
    /// Jobs that failed for good.
    pub failed_jobs: i64,
    /// Their uuids.
    pub failed_job_ids: Vec<String>,
    /// Options, including the `then` job.
    pub options: Value,
    /// When it was cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its last job finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// True while the fan-out is still adding jobs.
    pub dispatching: bool,
}

impl Batch {
    /// Jobs done (succeeded or failed for good).
    pub fn processed(&self) -> i64 {
        self.total_jobs - self.pending_jobs + self.failed_jobs
    }

    /// Percent done, 0–100.
    pub fn progress(&self) -> u32 {
        if self.total_jobs == 0 {
            return if self.dispatching { 0 } else { 100 };
        }
        ((self.processed().max(0) * 100) / self.total_jobs).min(100) as u32
    }
}

fn ts(t: Option<i64>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t, 0))
}

/// Creates a dispatching batch; `then` is enqueued when it finishes.
pub async fn create(
    db: &Db,
    name: &str,
    then: Option<Value>,
    now: DateTime<Utc>,
) -> Result<String> {
    let id = uuid::Uuid::now_v7().to_string();
    let options = serde_json::json!({ "then": then }).to_string();
    db.query(
        "INSERT INTO job_batches (id, name, total_jobs, pending_jobs, failed_jobs, failed_job_ids, options, cancelled_at, created_at, finished_at, dispatching) \
         VALUES (?, ?, 0, 0, 0, '', ?, NULL, ?, NULL, 1)",
    )
    .bind(&id)
    .bind(name)
    .bind(&options)
    .bind(now.timestamp())
    .execute(db)
    .await?;
    Ok(id)
}

/// Counts `n` jobs in (before they are enqueued); a negative `n` counts duplicates out.
pub async fn add_jobs(db: &Db, id: &str, n: i64) -> Result<()> {
    db.query("UPDATE job_batches SET total_jobs = total_jobs + ?, pending_jobs = pending_jobs + ? WHERE id = ?")
        .bind(n)
        .bind(n)
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Marks the fan-out done; true if this finished the batch.
pub async fn seal(db: &Db, id: &str, now: DateTime<Utc>) -> Result<bool> {
    db.query("UPDATE job_batches SET dispatching = 0 WHERE id = ?")
        .bind(id)
        .execute(db)
        .await?;
    try_finish(db, id, now).await
}

/// `n` jobs succeeded (a worker acknowledges them together); true if this finished the batch.
pub async fn jobs_succeeded(db: &Db, id: &str, n: i64, now: DateTime<Utc>) -> Result<bool> {
    db.query("UPDATE job_batches SET pending_jobs = pending_jobs - ? WHERE id = ?")
        .bind(n)
        .bind(id)
        .execute(db)
        .await?;
    try_finish(db, id, now).await
}

/// One job failed for good; true if this finished the batch.
pub async fn job_failed(db: &Db, id: &str, job_uuid: &str, now: DateTime<Utc>) -> Result<bool> {
    let append = db.backend().concat("failed_job_ids", "?");
    db.query(format!(
        "UPDATE job_batches SET failed_jobs = failed_jobs + 1, failed_job_ids = {append} WHERE id = ?"
    ))
    .bind(format!("{job_uuid},"))
    .bind(id)
    .execute(db)
    .await?;
    try_finish(db, id, now).await
}

async fn try_finish(db: &Db, id: &str, now: DateTime<Utc>) -> Result<bool> {
    let n = db
        .query("UPDATE job_batches SET finished_at = ? WHERE id = ? AND finished_at IS NULL AND dispatching = 0 AND pending_jobs <= failed_jobs")
        .bind(now.timestamp())
        .bind(id)
        .execute(db)
        .await?;
    Ok(n == 1)
}

/// Cancels a batch: its remaining jobs are skipped. False if there is no such batch.
pub async fn cancel(db: &Db, id: &str, now: DateTime<Utc>) -> Result<bool> {
    let n = db
        .query("UPDATE job_batches SET cancelled_at = ? WHERE id = ? AND cancelled_at IS NULL")
        .bind(now.timestamp())
        .bind(id)
        .execute(db)
        .await?;
    Ok(n == 1
        || find(db, id)
            .await?
            .is_some_and(|b| b.cancelled_at.is_some()))
}

const COLUMNS: &str = "id, name, total_jobs, pending_jobs, failed_jobs, failed_job_ids, options, cancelled_at, created_at, finished_at, dispatching";

fn from_row(r: &Row) -> Result<Batch> {
    let id: String = r.try_get(0)?;
    let ids: String = r.try_get(5)?;
    // A batch whose options do not parse would lose its `then` job without a word: say so.
    let options = match r.try_get::<Option<String>>(6)? {
        Some(o) => serde_json::from_str(&o).map_err(|e| {
            StoreError::Corrupt(format!(
                "batch {id}: its options (with its `then` job) are not valid JSON: {e}"
            ))
        })?,
        None => Value::Null,
    };
    Ok(Batch {
        name: r.try_get(1)?,
        total_jobs: r.try_get(2)?,
        pending_jobs: r.try_get(3)?,
        failed_jobs: r.try_get(4)?,
        failed_job_ids: ids
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        options,
        cancelled_at: ts(r.try_get(7)?),
        created_at: ts(Some(r.try_get(8)?)).unwrap_or_default(),
        finished_at: ts(r.try_get(9)?),
        dispatching: r.try_get::<i64>(10)? != 0,
        id,
    })
}

/// One batch by id.
pub async fn find(db: &Db, id: &str) -> Result<Option<Batch>> {
    db.query(format!("SELECT {COLUMNS} FROM job_batches WHERE id = ?"))
        .bind(id)
        .fetch_optional_as(db, from_row)
        .await
}

/// The newest `limit` batches.
pub async fn list(db: &Db, limit: i64) -> Result<Vec<Batch>> {
    db.query(format!(
        "SELECT {COLUMNS} FROM job_batches ORDER BY created_at DESC, id DESC LIMIT ?"
    ))
    .bind(limit)
    .fetch_as(db, from_row)
    .await
}
