//! `failed_jobs`, with Laravel's columns, so `SELECT COUNT(*) FROM failed_jobs WHERE failed_at
//! > …` monitoring keeps working.

use chrono::{DateTime, NaiveDateTime, Timelike, Utc};
use serde::Serialize;
use sqlx::Row;

use super::{Db, Result};
use crate::on_pool;

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
    let delete = db.sql("DELETE FROM failed_jobs WHERE uuid = ?");
    let insert = db.sql(
        "INSERT INTO failed_jobs (uuid, connection, queue, payload, exception, failed_at) VALUES (?, ?, ?, ?, ?, ?)",
    );
    // Whole seconds, as Laravel's TIMESTAMP column holds them, on every database.
    let at = now
        .naive_utc()
        .with_nanosecond(0)
        .unwrap_or(now.naive_utc());
    on_pool!(db, p => {
        let mut tx = p.begin().await?;
        sqlx::query(&delete).bind(failure.uuid).execute(&mut *tx).await?;
        sqlx::query(&insert)
            .bind(failure.uuid)
            .bind(failure.connection)
            .bind(failure.queue)
            .bind(failure.payload)
            .bind(failure.exception)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    });
    Ok(())
}

const COLUMNS: &str = "id, uuid, connection, queue, payload, exception, failed_at";

fn from_row<R: Row>(r: &R) -> std::result::Result<FailedJob, sqlx::Error>
where
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> NaiveDateTime: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    Ok(FailedJob {
        id: r.try_get(0)?,
        uuid: r.try_get(1)?,
        connection: r.try_get(2)?,
        queue: r.try_get(3)?,
        payload: r.try_get(4)?,
        exception: r.try_get(5)?,
        failed_at: r.try_get::<NaiveDateTime, _>(6)?.and_utc(),
    })
}

/// Every failed job, newest first.
pub async fn list(db: &Db) -> Result<Vec<FailedJob>> {
    let q = format!("SELECT {COLUMNS} FROM failed_jobs ORDER BY id DESC");
    let rows = on_pool!(db, p => sqlx::query(&q).fetch_all(p).await?.iter().map(from_row).collect::<std::result::Result<Vec<_>, _>>()?);
    Ok(rows)
}

/// One failed job by row id or uuid.
pub async fn find(db: &Db, id_or_uuid: &str) -> Result<Option<FailedJob>> {
    let id: i64 = id_or_uuid.parse().unwrap_or(-1);
    let q = db
        .sql(&format!(
            "SELECT {COLUMNS} FROM failed_jobs WHERE id = ? OR uuid = ?"
        ))
        .into_owned();
    let row = on_pool!(db, p => sqlx::query(&q).bind(id).bind(id_or_uuid).fetch_optional(p).await?.as_ref().map(from_row).transpose()?);
    Ok(row)
}

/// Deletes one failed job by row id; true if it existed.
pub async fn delete(db: &Db, id: i64) -> Result<bool> {
    let q = db.sql("DELETE FROM failed_jobs WHERE id = ?");
    let n = on_pool!(db, p => sqlx::query(&q).bind(id).execute(p).await?.rows_affected());
    Ok(n > 0)
}

/// Deletes every failed job; how many.
pub async fn flush(db: &Db) -> Result<u64> {
    let n =
        on_pool!(db, p => sqlx::query("DELETE FROM failed_jobs").execute(p).await?.rows_affected());
    Ok(n)
}

/// How many failed at or after `since`.
pub async fn count_since(db: &Db, since: DateTime<Utc>) -> Result<u64> {
    let q = db.sql("SELECT COUNT(*) FROM failed_jobs WHERE failed_at >= ?");
    let n: i64 =
        on_pool!(db, p => sqlx::query(&q).bind(since.naive_utc()).fetch_one(p).await?.try_get(0)?);
    Ok(n as u64)
}
