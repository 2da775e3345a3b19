//! `outbox_messages` (docs/outbox.md): events written in the same transaction as the domain change
//! they describe, then claimed and published by `outbox process`.
//!
//! A claim stamps `claimed_at`/`claimed_by` on a batch of unprocessed rows in id order,
//! skipping rows another processor has locked (`FOR UPDATE SKIP LOCKED` on PostgreSQL and
//! MariaDB; SQLite has one writer, so its single `UPDATE … RETURNING` is already exclusive).
//! A claimed row is not claimed again until its claim is older than `reclaim_after`, so two
//! processors never publish a row twice while it is claimed, and a processor that died frees
//! its rows after that delay.

use super::dialect::{self, Claim};
use super::sql::Value as Arg;
use super::{Db, Result, Row, Tx, in_list};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::Value;

/// An event to record.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// What changed, e.g. `order`.
    pub aggregate_type: &'static str,
    /// Its id.
    pub aggregate_id: String,
    /// What happened, e.g. `OrderCancelled`; it picks the job that publishing enqueues.
    pub event_type: &'static str,
    /// The event's data.
    pub payload: Value,
}

/// One stored message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// Row id; messages are published in id order.
    pub id: i64,
    /// What changed.
    pub aggregate_type: String,
    /// Its id.
    pub aggregate_id: String,
    /// What happened.
    pub event_type: String,
    /// The event's data, as JSON text.
    pub payload: String,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// When it may be (re)tried.
    pub available_at: DateTime<Utc>,
    /// Publish attempts so far.
    pub attempts: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When a processor claimed it.
    pub claimed_at: Option<DateTime<Utc>>,
    /// Which processor.
    pub claimed_by: Option<String>,
    /// When it was published.
    pub processed_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, aggregate_type, aggregate_id, event_type, payload, created_at, available_at, attempts, last_error, claimed_at, claimed_by, processed_at";

fn ts(t: Option<i64>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t, 0))
}

fn decode(r: &Row) -> Result<Message> {
    Ok(Message {
        id: r.try_get(0)?,
        aggregate_type: r.try_get(1)?,
        aggregate_id: r.try_get(2)?,
        event_type: r.try_get(3)?,
        payload: r.try_get(4)?,
        created_at: ts(Some(r.try_get(5)?)).unwrap_or_default(),
        available_at: ts(Some(r.try_get(6)?)).unwrap_or_default(),
        attempts: r.try_get(7)?,
        last_error: r.try_get(8)?,
        claimed_at: ts(r.try_get(9)?),
        claimed_by: r.try_get(10)?,
        processed_at: ts(r.try_get(11)?),
    })
}

/// Writes `m` inside the caller's transaction: it commits or rolls back with the domain change.
pub async fn insert_tx(tx: &mut Tx, m: &NewMessage, now: DateTime<Utc>) -> Result<()> {
    tx.query(
        "INSERT INTO outbox_messages (aggregate_type, aggregate_id, event_type, payload, created_at, available_at, attempts) \
         VALUES (?, ?, ?, ?, ?, ?, 0)",
    )
    .bind(m.aggregate_type)
    .bind(&m.aggregate_id)
    .bind(m.event_type)
    .bind(m.payload.to_string())
    .bind(now.timestamp())
    .bind(now.timestamp())
    .execute(tx)
    .await?;
    Ok(())
}

/// Claims up to `batch` unprocessed, available rows in id order for `owner`, counting an
/// attempt on each. Rows claimed by another processor less than `reclaim_after` plus the
/// tolerated clock skew ago are left.
pub async fn claim(
    db: &Db,
    batch: i64,
    owner: &str,
    now: DateTime<Utc>,
    reclaim_after: TimeDelta,
) -> Result<Vec<Message>> {
    let stale = (now - reclaim_after - crate::clock::MAX_CLOCK_SKEW).timestamp();
    let claimed = dialect::claim(
        db,
        &Claim {
            table: "outbox_messages",
            pick: "SELECT id FROM outbox_messages WHERE processed_at IS NULL AND available_at <= ? \
                   AND (claimed_at IS NULL OR claimed_at < ?) ORDER BY id LIMIT ?",
            pick_args: &[Arg::Int(now.timestamp()), Arg::Int(stale), Arg::Int(batch)],
            set: "claimed_at = ?, claimed_by = ?, attempts = attempts + 1",
            set_args: &[Arg::Int(now.timestamp()), Arg::Text(owner.to_string())],
            columns: COLUMNS,
        },
    )
    .await?;
    let mut rows = claimed.iter().map(decode).collect::<Result<Vec<_>>>()?;
    rows.sort_by_key(|m| m.id);
    Ok(rows)
}

/// Marks `ids` published, where `owner` still holds their claim. Returns how many.
pub async fn mark_processed(db: &Db, ids: &[i64], owner: &str, now: DateTime<Utc>) -> Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let n = db
        .query(format!(
            "UPDATE outbox_messages SET processed_at = ?, claimed_at = NULL, claimed_by = NULL, last_error = NULL \
             WHERE claimed_by = ? AND id IN ({})",
            in_list(ids.len())
        ))
        .bind(now.timestamp())
        .bind(owner)
        .bind_all(ids.iter().copied())
        .execute(db)
        .await?;
    Ok(n)
}

/// Records a failed publish of `id`: its error, and when to try again; the claim is dropped.
pub async fn mark_failed(
    db: &Db,
    id: i64,
    owner: &str,
    error: &str,
    retry_at: DateTime<Utc>,
) -> Result<()> {
    db.query(
        "UPDATE outbox_messages SET last_error = ?, available_at = ?, claimed_at = NULL, claimed_by = NULL \
         WHERE id = ? AND claimed_by = ?",
    )
    .bind(error)
    .bind(retry_at.timestamp())
    .bind(id)
    .bind(owner)
    .execute(db)
    .await?;
    Ok(())
}

/// Messages with ids in `[from, to]`, processed or not, in id order (for `replay`).
pub async fn range(db: &Db, from: i64, to: i64) -> Result<Vec<Message>> {
    db.query(format!(
        "SELECT {COLUMNS} FROM outbox_messages WHERE id >= ? AND id <= ? ORDER BY id"
    ))
    .bind(from)
    .bind(to)
    .fetch_as(db, decode)
    .await
}

/// Unprocessed messages that are stuck: claimed before `claimed_before` and never finished,
/// or tried at least `min_attempts` times and failing. Oldest first, at most `limit`.
pub async fn stuck(
    db: &Db,
    claimed_before: DateTime<Utc>,
    min_attempts: i64,
    limit: i64,
) -> Result<Vec<Message>> {
    db.query(format!(
        "SELECT {COLUMNS} FROM outbox_messages WHERE processed_at IS NULL \
         AND ((claimed_at IS NOT NULL AND claimed_at < ?) OR (attempts >= ? AND last_error IS NOT NULL)) \
         ORDER BY id LIMIT ?"
    ))
    .bind(claimed_before.timestamp())
    .bind(min_attempts)
    .bind(limit)
    .fetch_as(db, decode)
    .await
}

/// When the oldest message still waiting to be published was written, if any.
pub async fn oldest_unprocessed(db: &Db) -> Result<Option<DateTime<Utc>>> {
    let t: Option<i64> = db
        .query("SELECT MIN(created_at) FROM outbox_messages WHERE processed_at IS NULL")
        .scalar(db)
        .await?;
    Ok(ts(t))
}

/// How many messages wait to be published.
pub async fn backlog(db: &Db) -> Result<i64> {
    db.query("SELECT COUNT(*) FROM outbox_messages WHERE processed_at IS NULL")
        .scalar(db)
        .await
}
