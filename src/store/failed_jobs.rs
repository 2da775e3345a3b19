//! `failed_jobs`, with Laravel's columns, so `SELECT COUNT(*) FROM failed_jobs WHERE failed_at
//! > …` monitoring keeps working.

use super::{Db, Result, Row};
use chrono::{DateTime, NaiveDateTime, Timelike, Utc};
use serde::Serialize;

/// One row of `failed_jobs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedJob {
    /// Row id (what `queue retry ID` takes).
    pub id: i64,
    /// The job's uuid.
    pub uuid: String,
    /// The queue driver it ran on.
    pub connection: String,
    /// Its queue.
    pub queue: String,
    /// The payload as it was stored.
    pub payload: String,
    /// Why it failed.
    pub exception: String,
    /// When, UTC.
    pub failed_at: DateTime<Utc>,
}

/// A failure to record.
#[derive(Debug, Clone)]
pub struct NewFailure<'a> {
    /// The job's uuid.
    pub uuid: &'a str,
    /// The queue driver.
    pub connection: &'a str,
    /// The queue.
    pub queue: &'a str,
    /// The payload as stored.
    pub payload: &'a str,
    /// Why it failed.
    pub exception: &'a str,
}

/// Records a failure at `now`. A row with the same uuid (a job that failed, was retried and
/// failed again, or a retry of a crash) is replaced, so a job has at most one row.
pub async fn insert(db: &Db, failure: &NewFailure<'_>, now: DateTime<Utc>) -> Result<()> {
    // Whole seconds, as Laravel's TIMESTAMP column holds them, on every database.
    let at = now
        .naive_utc()
        .with_nanosecond(0)
        .unwrap_or(now.naive_utc());
    let mut tx = db.begin().await?;
    tx.query("DELETE FROM failed_jobs WHERE uuid = ?")
        .bind(failure.uuid)
        .execute(&mut tx)
        .await?;
    tx.query(
        "INSERT INTO failed_jobs (uuid, connection, queue, payload, exception, failed_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(failure.uuid)
    .bind(failure.connection)
    .bind(failure.queue)
    .bind(failure.payload)
    .bind(failure.exception)
    .bind(at)
    .execute(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

const COLUMNS: &str = "id, uuid, connection, queue, payload, exception, failed_at";

fn from_row(r: &Row) -> Result<FailedJob> {
    Ok(FailedJob {
        id: r.try_get(0)?,
        uuid: r.try_get(1)?,
        connection: r.try_get(2)?,
        queue: r.try_get(3)?,
        payload: r.try_get(4)?,
        exception: r.try_get(5)?,
        failed_at: r.try_get::<NaiveDateTime>(6)?.and_utc(),
    })
}

/// Every failed job, newest first.
pub async fn list(db: &Db) -> Result<Vec<FailedJob>> {
    db.query(format!(
        "SELECT {COLUMNS} FROM failed_jobs ORDER BY id DESC"
    ))
    .fetch_as(db, from_row)
    .await
}

/// One failed job by row id or uuid.
pub async fn find(db: &Db, id_or_uuid: &str) -> Result<Option<FailedJob>> {
    let query = match id_or_uuid.parse::<i64>() {
        Ok(id) => db
            .query(format!(
                "SELECT {COLUMNS} FROM failed_jobs WHERE id = ? OR uuid = ?"
            ))
            .bind(id),
        Err(_) => db.query(format!("SELECT {COLUMNS} FROM failed_jobs WHERE uuid = ?")),
    };
    query.bind(id_or_uuid).fetch_optional_as(db, from_row).await
}

/// Deletes one failed job by row id; true if it existed.
pub async fn delete(db: &Db, id: i64) -> Result<bool> {
    let n = db
        .query("DELETE FROM failed_jobs WHERE id = ?")
        .bind(id)
        .execute(db)
        .await?;
    Ok(n > 0)
}

/// Deletes every failed job; how many.
pub async fn flush(db: &Db) -> Result<u64> {
    db.query("DELETE FROM failed_jobs").execute(db).await
}

/// How many failed at or after `since`.
pub async fn count_since(db: &Db, since: DateTime<Utc>) -> Result<u64> {
    let n: i64 = db
        .query("SELECT COUNT(*) FROM failed_jobs WHERE failed_at >= ?")
        .bind(since.naive_utc())
        .scalar(db)
        .await?;
    Ok(n as u64)
}
