//! Live workers (`worker_heartbeats`) and schedulers (`schedulers`), and the restart signal
//! (`queue_signals`), so `queue status` and `schedule health` can show who is alive and
//! `queue restart` reaches every worker on every host.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::{Db, Result};
use crate::on_pool;

/// A worker is alive while its last heartbeat is at most this old.
pub const ALIVE_FOR_SECONDS: i64 = 30;

/// One worker's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heartbeat {
    /// Worker id.
    pub id: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: i64,
    /// Queue driver.
    pub connection: String,
    /// Queues it drains, in priority order.
    pub queues: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat.
    pub last_seen_at: DateTime<Utc>,
    /// Jobs it finished.
    pub jobs_processed: i64,
    /// `running`, `stopping` or `stopped`.
    pub status: String,
}

fn ts(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(t, 0).unwrap_or_default()
}

/// Writes (or refreshes) a worker's heartbeat.
pub async fn beat(db: &Db, hb: &Heartbeat) -> Result<()> {
    let update = db.sql(
        "UPDATE worker_heartbeats SET last_seen_at = ?, jobs_processed = ?, status = ? WHERE id = ?",
    );
    let insert = db.sql(
        "INSERT INTO worker_heartbeats (id, host, pid, connection, queues, started_at, last_seen_at, jobs_processed, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    on_pool!(db, p => {
        let n = sqlx::query(&update)
            .bind(hb.last_seen_at.timestamp())
            .bind(hb.jobs_processed)
            .bind(&hb.status)
            .bind(&hb.id)
            .execute(p)
            .await?
            .rows_affected();
        if n == 0 {
            sqlx::query(&insert)
                .bind(&hb.id)
                .bind(&hb.host)
                .bind(hb.pid)
                .bind(&hb.connection)
                .bind(&hb.queues)
                .bind(hb.started_at.timestamp())
                .bind(hb.last_seen_at.timestamp())
                .bind(hb.jobs_processed)
                .bind(&hb.status)
                .execute(p)
                .await?;
        }
    });
    Ok(())
}

/// Workers whose heartbeat is recent at `now`, and not stopped.
pub async fn alive(db: &Db, now: DateTime<Utc>) -> Result<Vec<Heartbeat>> {
    let q = db.sql(
        "SELECT id, host, pid, connection, queues, started_at, last_seen_at, jobs_processed, status \
         FROM worker_heartbeats WHERE last_seen_at >= ? AND status <> 'stopped' ORDER BY started_at",
    );
    let rows = on_pool!(db, p => {
        sqlx::query(&q).bind(now.timestamp() - ALIVE_FOR_SECONDS).fetch_all(p).await?
            .iter()
            .map(|r| Ok(Heartbeat {
                id: r.try_get(0)?,
                host: r.try_get(1)?,
                pid: r.try_get(2)?,
                connection: r.try_get(3)?,
                queues: r.try_get(4)?,
                started_at: ts(r.try_get(5)?),
                last_seen_at: ts(r.try_get(6)?),
                jobs_processed: r.try_get(7)?,
                status: r.try_get(8)?,
            }))
            .collect::<std::result::Result<Vec<_>, sqlx::Error>>()?
    });
    Ok(rows)
}

/// Sets a named signal (e.g. `restart`) to `value`.
pub async fn signal(db: &Db, name: &str, value: i64) -> Result<()> {
    let update = db.sql("UPDATE queue_signals SET value = ? WHERE name = ?");
    let insert = db.sql("INSERT INTO queue_signals (name, value) VALUES (?, ?)");
    on_pool!(db, p => {
        let n = sqlx::query(&update).bind(value).bind(name).execute(p).await?.rows_affected();
        if n == 0 {
            sqlx::query(&insert).bind(name).bind(value).execute(p).await?;
        }
    });
    Ok(())
}

/// The value of a named signal, if ever set.
pub async fn read_signal(db: &Db, name: &str) -> Result<Option<i64>> {
    let q = db.sql("SELECT value FROM queue_signals WHERE name = ?");
    let v = on_pool!(db, p => match sqlx::query(&q).bind(name).fetch_optional(p).await? {
        Some(r) => Some(r.try_get::<i64, _>(0)?),
        None => None,
    });
    Ok(v)
}

/// One scheduler process's row in `schedulers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchedulerBeat {
    /// Process id (a uuid).
    pub id: String,
    /// Host name.
    pub host: String,
    /// OS process id.
    pub pid: i64,
    /// Hash of the schedule file it runs.
    pub schedule_hash: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat.
    pub last_seen_at: DateTime<Utc>,
    /// `running` or `stopped`.
    pub status: String,
}

/// Writes (or refreshes) a scheduler's heartbeat.
pub async fn beat_scheduler(db: &Db, s: &SchedulerBeat) -> Result<()> {
    let update = db
        .sql("UPDATE schedulers SET last_seen_at = ?, status = ?, schedule_hash = ? WHERE id = ?");
    let insert = db.sql(
        "INSERT INTO schedulers (id, host, pid, schedule_hash, started_at, last_seen_at, status) VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    on_pool!(db, p => {
        let n = sqlx::query(&update)
            .bind(s.last_seen_at.timestamp())
            .bind(&s.status)
            .bind(&s.schedule_hash)
            .bind(&s.id)
            .execute(p)
            .await?
            .rows_affected();
        if n == 0 {
            sqlx::query(&insert)
                .bind(&s.id)
                .bind(&s.host)
                .bind(s.pid)
                .bind(&s.schedule_hash)
                .bind(s.started_at.timestamp())
                .bind(s.last_seen_at.timestamp())
                .bind(&s.status)
                .execute(p)
                .await?;
        }
    });
    Ok(())
}

/// Schedulers whose heartbeat is recent at `now`, and not stopped.
pub async fn alive_schedulers(db: &Db, now: DateTime<Utc>) -> Result<Vec<SchedulerBeat>> {
    let q = db.sql(
        "SELECT id, host, pid, schedule_hash, started_at, last_seen_at, status FROM schedulers \
         WHERE last_seen_at >= ? AND status <> 'stopped' ORDER BY started_at",
    );
    let rows = on_pool!(db, p => {
        sqlx::query(&q).bind(now.timestamp() - ALIVE_FOR_SECONDS).fetch_all(p).await?
            .iter()
            .map(|r| Ok(SchedulerBeat {
                id: r.try_get(0)?,
                host: r.try_get(1)?,
                pid: r.try_get(2)?,
                schedule_hash: r.try_get(3)?,
                started_at: ts(r.try_get(4)?),
                last_seen_at: ts(r.try_get(5)?),
                status: r.try_get(6)?,
            }))
            .collect::<std::result::Result<Vec<_>, sqlx::Error>>()?
    });
    Ok(rows)
}
