//! Live workers (`worker_heartbeats`) and schedulers (`schedulers`), and the restart signal
//! (`queue_signals`), so `queue status` and `schedule health` can show who is alive and
//! `queue restart` reaches every worker on every host.

use super::{Db, Result, Row};
use chrono::{DateTime, Utc};
use serde::Serialize;

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
    let upsert = db.backend().upsert(
        "worker_heartbeats",
        "(id, host, pid, connection, queues, started_at, last_seen_at, jobs_processed, status) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        "id",
        &[
            ("last_seen_at", "NEW(last_seen_at)"),
            ("jobs_processed", "NEW(jobs_processed)"),
            ("status", "NEW(status)"),
        ],
    );
    db.query(upsert)
        .bind(&hb.id)
        .bind(&hb.host)
        .bind(hb.pid)
        .bind(&hb.connection)
        .bind(&hb.queues)
        .bind(hb.started_at.timestamp())
        .bind(hb.last_seen_at.timestamp())
        .bind(hb.jobs_processed)
        .bind(&hb.status)
        .execute(db)
        .await?;
    Ok(())
}

/// Workers whose heartbeat is recent at `now`, and not stopped.
pub async fn alive(db: &Db, now: DateTime<Utc>) -> Result<Vec<Heartbeat>> {
    db.query(
        "SELECT id, host, pid, connection, queues, started_at, last_seen_at, jobs_processed, status \
         FROM worker_heartbeats WHERE last_seen_at >= ? AND status <> 'stopped' ORDER BY started_at",
    )
    .bind(now.timestamp() - ALIVE_FOR_SECONDS)
    .fetch_all(db)
    .await?
    .iter()
    .map(|r: &Row| {
        Ok(Heartbeat {
            id: r.try_get(0)?,
            host: r.try_get(1)?,
            pid: r.try_get(2)?,
            connection: r.try_get(3)?,
            queues: r.try_get(4)?,
            started_at: ts(r.try_get(5)?),
            last_seen_at: ts(r.try_get(6)?),
            jobs_processed: r.try_get(7)?,
            status: r.try_get(8)?,
        })
    })
    .collect()
}

/// Sets a named signal (e.g. `restart`) to `value`.
pub async fn signal(db: &Db, name: &str, value: i64) -> Result<()> {
    let upsert = db.backend().upsert(
        "queue_signals",
        "(name, value) VALUES (?, ?)",
        "name",
        &[("value", "NEW(value)")],
    );
    db.query(upsert).bind(name).bind(value).execute(db).await?;
    Ok(())
}

/// The value of a named signal, if ever set.
pub async fn read_signal(db: &Db, name: &str) -> Result<Option<i64>> {
    db.query("SELECT value FROM queue_signals WHERE name = ?")
        .bind(name)
        .scalar_optional(db)
        .await
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

/// The distinct schedule hashes `schedulers` run, in order: more than one means they disagree
/// on what is due.
pub fn schedule_hashes(schedulers: &[SchedulerBeat]) -> Vec<&str> {
    let mut hashes: Vec<&str> = schedulers
        .iter()
        .map(|s| s.schedule_hash.as_str())
        .collect();
    hashes.sort_unstable();
    hashes.dedup();
    hashes
}

/// Writes (or refreshes) a scheduler's heartbeat.
pub async fn beat_scheduler(db: &Db, s: &SchedulerBeat) -> Result<()> {
    let upsert = db.backend().upsert(
        "schedulers",
        "(id, host, pid, schedule_hash, started_at, last_seen_at, status) VALUES (?, ?, ?, ?, ?, ?, ?)",
        "id",
        &[
            ("last_seen_at", "NEW(last_seen_at)"),
            ("status", "NEW(status)"),
            ("schedule_hash", "NEW(schedule_hash)"),
        ],
    );
    db.query(upsert)
        .bind(&s.id)
        .bind(&s.host)
        .bind(s.pid)
        .bind(&s.schedule_hash)
        .bind(s.started_at.timestamp())
        .bind(s.last_seen_at.timestamp())
        .bind(&s.status)
        .execute(db)
        .await?;
    Ok(())
}

/// Schedulers whose heartbeat is recent at `now`, and not stopped.
pub async fn alive_schedulers(db: &Db, now: DateTime<Utc>) -> Result<Vec<SchedulerBeat>> {
    db.query(
        "SELECT id, host, pid, schedule_hash, started_at, last_seen_at, status FROM schedulers \
         WHERE last_seen_at >= ? AND status <> 'stopped' ORDER BY started_at",
    )
    .bind(now.timestamp() - ALIVE_FOR_SECONDS)
    .fetch_all(db)
    .await?
    .iter()
    .map(|r: &Row| {
        Ok(SchedulerBeat {
            id: r.try_get(0)?,
            host: r.try_get(1)?,
            pid: r.try_get(2)?,
            schedule_hash: r.try_get(3)?,
            started_at: ts(r.try_get(4)?),
            last_seen_at: ts(r.try_get(5)?),
            status: r.try_get(6)?,
        })
    })
    .collect()
}
