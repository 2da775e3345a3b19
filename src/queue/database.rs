//! The `database` driver: Laravel's `jobs` table on SQLite, PostgreSQL or MySQL/MariaDB, and
//! unique locks in `job_locks`, taken in the same transaction as the job row.
//!
//! Reservation is one atomic step per queue: on PostgreSQL an `UPDATE … WHERE ctid = ANY
//! (ARRAY(SELECT … FOR UPDATE SKIP LOCKED)) RETURNING` inside the function
//! `conecta_reserve_jobs` (its plan fixed, see `migrations/postgres/0011_jobs_reserve.sql`),
//! on MySQL/MariaDB (≥ 10.6) a `SELECT … FOR UPDATE SKIP LOCKED` and `UPDATE` in one
//! transaction, on SQLite a single `UPDATE … RETURNING`, which takes SQLite's write lock for
//! the whole statement (what `BEGIN IMMEDIATE` would give a multi-statement transaction).
//! MySQL connections run at READ COMMITTED so concurrent enqueues of one unique key never
//! deadlock on gap locks.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Enqueued, LockInfo, NewJob, Queue, QueueDepth, QueueError, Reserved, Result, decode};
use crate::store::dialect::{self, Claim};
use crate::store::sql::Value;
use crate::store::wakeups::{self, Wakeups};
use crate::store::{Db, Row, in_list, padded_ids, retrying, value_groups};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// The most jobs one reservation or one acknowledgement statement takes.
const MAX_RESERVE: usize = 500;

/// Jobs in the `jobs` table.
#[derive(Debug)]
pub struct DatabaseQueue {
    db: Db,
    retry_after: i64,
    floors: Mutex<HashMap<String, i64>>,
    /// When, per queue, the last full scan after an empty shortcut ran (clock seconds).
    full_scans: Mutex<HashMap<String, i64>>,
    scans: AtomicU64,
    /// `LISTEN` on PostgreSQL; `None` elsewhere (workers poll).
    wakeups: Option<Wakeups>,
}

impl DatabaseQueue {
    /// Makes a reserved job ready again after `delay`, with its attempts set to `attempts`
    /// (an SQL expression over the column).
    async fn put_back(
        &self,
        job: &Reserved,
        delay: Duration,
        now: DateTime<Utc>,
        attempts: &str,
    ) -> Result<()> {
        let db = &self.db;
        let at = now.timestamp() + delay.as_secs() as i64;
        let id = row_id(job)?;
        // The next scan starts at or below it, so a job put back is found in its turn.
        if let Some(floor) = self.floors.lock().expect("floors").get_mut(&job.queue) {
            *floor = (*floor).min(id);
        }
        db.query(format!(
            "UPDATE jobs SET reserved_at = NULL, available_at = ?, attempts = {attempts} WHERE id = ?"
        ))
        .bind(at)
        .bind(id)
        .execute(db)
        .await?;
        Ok(())
    }

    /// A queue on `db`; reserved jobs come back after `retry_after`.
    pub fn new(db: Db, retry_after: Duration) -> Self {
        Self {
            retry_after: retry_after.as_secs() as i64,
            floors: Mutex::new(HashMap::new()),
            full_scans: Mutex::new(HashMap::new()),
            scans: AtomicU64::new(0),
            wakeups: Wakeups::for_db(&db),
            db,
        }
    }

    /// True, once per second of the clock and queue, when an empty shortcut scan may be
    /// followed by a full one.
    fn full_scan_due(&self, queue: &str, t: i64) -> bool {
        let mut last = self.full_scans.lock().expect("full scans");
        match last.get(queue) {
            Some(&at) if at >= t => false,
            _ => {
                last.insert(queue.to_string(), t);
                true
            }
        }
    }

    /// The pool underneath.
    pub fn db(&self) -> &Db {
        &self.db
    }
}

/// One job ready to insert.
struct PendingRow {
    queue: String,
    payload: String,
    available_at: i64,
    uuid: String,
    key: Option<String>,
    expires_at: i64,
}

#[async_trait]
impl Queue for DatabaseQueue {
    fn connection(&self) -> &'static str {
        "database"
    }

    async fn enqueue_bulk(&self, jobs: Vec<NewJob>, now: DateTime<Utc>) -> Result<Vec<Enqueued>> {
        let t = now.timestamp();
        // Within a chunk the first job with a key competes for it; later ones are duplicates.
        let mut seen = HashSet::new();
        let mut rows = Vec::with_capacity(jobs.len());
        let mut answers: Vec<Option<Enqueued>> = Vec::with_capacity(jobs.len());
        for job in jobs {
            let queue = job.queue.clone();
            let available_at = t + job.delay as i64;
            let envelope = job.into_envelope(now);
            let key = envelope.unique.as_ref().map(|u| u.key.clone());
            if let Some(k) = &key
                && !seen.insert(k.clone())
            {
                answers.push(Some(Enqueued::Duplicate));
                rows.push(None);
                continue;
            }
            answers.push(None);
            let expires_at = t + envelope.unique.as_ref().map(|u| u.ttl as i64).unwrap_or(0);
            rows.push(Some(PendingRow {
                queue,
                payload: serde_json::to_string(&envelope)?,
                available_at,
                uuid: envelope.uuid,
                key,
                expires_at,
            }));
        }
        let live: Vec<&PendingRow> = rows.iter().flatten().collect();
        let won = retrying(|| insert_chunk(&self.db, &live, t)).await?;
        let mut won = won.into_iter();
        for (answer, row) in answers.iter_mut().zip(&rows) {
            if let Some(row) = row {
                *answer = Some(if won.next().expect("one per live row") {
                    Enqueued::Job(row.uuid.clone())
                } else {
                    Enqueued::Duplicate
                });
            }
        }
        Ok(answers.into_iter().map(|a| a.expect("answered")).collect())
    }

    async fn reserve_many(
        &self,
        queues: &[String],
        max: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<Reserved>> {
        if let Some(w) = &self.wakeups {
            w.arm();
        }
        let t = now.timestamp();
        let expired = t - self.retry_after;
        let max = max.clamp(1, MAX_RESERVE) as i64;
        for queue in queues {
            // Start the scan at the last id this process took: rows below it were taken or
            // not yet due then, and rescanning the dead rows a busy queue leaves behind (until
            // vacuum) made every reservation slower. A full scan runs every 256th time and
            // when the shortcut finds nothing, at most once per second of the clock (an idle
            // worker polling an empty queue would otherwise walk every dead row each time), so
            // delayed jobs that came due, expired reservations and jobs other processes put
            // back below the floor are found within a second; this process's own put-backs
            // lower the floor at once.
            let n = self.scans.fetch_add(1, Ordering::Relaxed);
            let floor = if n.is_multiple_of(256) {
                0
            } else {
                self.floors
                    .lock()
                    .expect("floors")
                    .get(queue)
                    .copied()
                    .unwrap_or(0)
            };
            let mut found =
                retrying(|| reserve_up_to(&self.db, queue, floor, t, expired, max)).await?;
            if found.is_empty() && floor > 0 && self.full_scan_due(queue, t) {
                found = retrying(|| reserve_up_to(&self.db, queue, 0, t, expired, max)).await?;
            }
            if let Some((last, _, _)) = found.last() {
                self.floors
                    .lock()
                    .expect("floors")
                    .insert(queue.clone(), *last);
                return Ok(found
                    .into_iter()
                    .map(|(id, raw, attempts)| Reserved {
                        envelope: decode(&raw),
                        handle: id.to_string(),
                        queue: queue.clone(),
                        raw,
                        attempts: attempts as u32,
                    })
                    .collect());
            }
        }
        Ok(Vec::new())
    }

    async fn delete_many(&self, jobs: &[Reserved]) -> Result<()> {
        let ids = jobs.iter().map(row_id).collect::<Result<Vec<i64>>>()?;
        let db = &self.db;
        for part in ids.chunks(MAX_RESERVE) {
            let part = padded_ids(part);
            db.query(format!(
                "DELETE FROM jobs WHERE id IN ({})",
                in_list(part.len())
            ))
            .bind_all(part)
            .execute(db)
            .await?;
        }
        Ok(())
    }

    async fn release(&self, job: &Reserved, delay: Duration, now: DateTime<Utc>) -> Result<()> {
        self.put_back(job, delay, now, "attempts").await
    }

    async fn postpone(&self, job: &Reserved, delay: Duration, now: DateTime<Utc>) -> Result<()> {
        self.put_back(
            job,
            delay,
            now,
            "CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END",
        )
        .await
    }

    async fn unlock(&self, _queue: &str, key: &str, owner: &str) -> Result<bool> {
        let db = &self.db;
        let n = db
            .query("DELETE FROM job_locks WHERE lock_key = ? AND owner = ?")
            .bind(key)
            .bind(owner)
            .execute(db)
            .await?;
        Ok(n > 0)
    }

    async fn force_unlock(&self, key: &str) -> Result<bool> {
        let db = &self.db;
        let n = db
            .query("DELETE FROM job_locks WHERE lock_key = ?")
            .bind(key)
            .execute(db)
            .await?;
        Ok(n > 0)
    }

    async fn locks(&self, prefix: &str, now: DateTime<Utc>) -> Result<Vec<LockInfo>> {
        let db = &self.db;
        let key = db.backend().text("lock_key");
        let rows = db
            .query(format!(
                "SELECT {key}, owner, expires_at FROM job_locks WHERE expires_at > ? ORDER BY lock_key"
            ))
            .bind(now.timestamp())
            .fetch_all(db)
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<Vec<(String, String, i64)>>>()?;
        Ok(rows
            .into_iter()
            .filter(|(k, _, _)| k.starts_with(prefix))
            .map(|(key, owner, exp)| LockInfo {
                key,
                owner,
                expires_at: DateTime::from_timestamp(exp, 0).unwrap_or_default(),
            })
            .collect())
    }

    async fn depths(&self, now: DateTime<Utc>) -> Result<Vec<QueueDepth>> {
        let db = &self.db;
        let t = now.timestamp();
        let rows = db
            .query(
                "SELECT queue, \
                 COUNT(CASE WHEN reserved_at IS NULL AND available_at <= ? THEN 1 END), \
                 COUNT(CASE WHEN reserved_at IS NOT NULL THEN 1 END), \
                 COUNT(CASE WHEN reserved_at IS NULL AND available_at > ? THEN 1 END) \
                 FROM jobs GROUP BY queue ORDER BY queue",
            )
            .bind(t)
            .bind(t)
            .fetch_all(db)
            .await?
            .iter()
            .map(|r: &Row| {
                Ok(QueueDepth {
                    queue: r.try_get(0)?,
                    pending: r.try_get::<i64>(1)? as u64,
                    reserved: r.try_get::<i64>(2)? as u64,
                    delayed: r.try_get::<i64>(3)? as u64,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(rows)
    }

    async fn clear(&self, queue: &str, lock_prefix: &str) -> Result<()> {
        let db = &self.db;
        let keys: Vec<String> = self
            .locks(lock_prefix, DateTime::<Utc>::MIN_UTC)
            .await?
            .into_iter()
            .map(|l| l.key)
            .collect();
        db.query("DELETE FROM jobs WHERE queue = ?")
            .bind(queue)
            .execute(db)
            .await?;
        for part in keys.chunks(500) {
            db.query(format!(
                "DELETE FROM job_locks WHERE lock_key IN ({})",
                in_list(part.len())
            ))
            .bind_all(part)
            .execute(db)
            .await?;
        }
        Ok(())
    }

    async fn wait_for_work(&self, _queues: &[String], max: Duration) -> Result<bool> {
        match &self.wakeups {
            Some(w) => {
                w.wait(max).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn wakes_idle_workers(&self) -> bool {
        self.wakeups.is_some()
    }

    async fn purge(&self) -> Result<()> {
        let db = &self.db;
        db.query("DELETE FROM jobs").execute(db).await?;
        db.query("DELETE FROM job_locks").execute(db).await?;
        Ok(())
    }
}

/// The `jobs` row id a reservation carries as its handle.
fn row_id(job: &Reserved) -> Result<i64> {
    job.handle.parse().map_err(|_| {
        QueueError::Invalid(format!(
            "job {} has handle {:?}, which is not a row id of the jobs table",
            job.uuid(),
            job.handle
        ))
    })
}

/// Inserts one chunk in one transaction; for each row, whether it was stored (false: its
/// unique key was held).
async fn insert_chunk(db: &Db, rows: &[&PendingRow], now: i64) -> crate::store::Result<Vec<bool>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let keyed: Vec<&str> = rows.iter().filter_map(|r| r.key.as_deref()).collect();
    let backend = db.backend();
    if keyed.is_empty() && backend == crate::store::Backend::Postgres {
        return insert_unkeyed_postgres(db, rows, now).await;
    }
    let mut tx = db.begin().await?;
    let mut won: HashSet<String> = HashSet::new();
    if !keyed.is_empty() {
        let list = in_list(keyed.len());
        tx.query(format!(
            "DELETE FROM job_locks WHERE expires_at <= ? AND lock_key IN ({list})"
        ))
        .bind(now)
        .bind_all(keyed.iter().copied())
        .execute(&mut tx)
        .await?;
        let lock = backend.insert_ignore(
            &format!(
                "job_locks (lock_key, owner, expires_at, created_at) VALUES {}",
                value_groups(keyed.len(), 4)
            ),
            "lock_key",
        );
        let values: Vec<Value> = rows
            .iter()
            .filter(|r| r.key.is_some())
            .flat_map(|r| {
                [
                    Value::Text(r.key.clone().unwrap_or_default()),
                    Value::Text(r.uuid.clone()),
                    Value::Int(r.expires_at),
                    Value::Int(now),
                ]
            })
            .collect();
        tx.query(lock).bind_values(&values).execute(&mut tx).await?;
        let share = backend.share_lock();
        for row in tx
            .query(format!(
                "SELECT lock_key, owner FROM job_locks WHERE lock_key IN ({list}){share}"
            ))
            .bind_all(keyed.iter().copied())
            .fetch_all(&mut tx)
            .await?
        {
            won.insert(row.try_get(1)?);
        }
    }
    let stored: Vec<bool> = rows
        .iter()
        .map(|r| r.key.is_none() || won.contains(&r.uuid))
        .collect();
    let to_insert: Vec<&&PendingRow> = rows
        .iter()
        .zip(&stored)
        .filter(|(_, s)| **s)
        .map(|(r, _)| r)
        .collect();
    if backend == crate::store::Backend::Postgres && !to_insert.is_empty() {
        // Idle workers LISTEN; the notification is delivered when this commits.
        let rows: Vec<&PendingRow> = to_insert.iter().map(|r| **r).collect();
        postgres_insert(tx.query(POSTGRES_INSERT), &rows, now)
            .execute(&mut tx)
            .await?;
    }
    let rest = if backend == crate::store::Backend::Postgres {
        &[][..]
    } else {
        &to_insert[..]
    };
    for part in rest.chunks(1000) {
        let mut q = tx.query(format!(
            "INSERT INTO jobs (queue, payload, attempts, reserved_at, available_at, created_at) VALUES {}",
            value_groups(part.len(), 6)
        ));
        for r in part {
            q = q
                .bind(r.queue.as_str())
                .bind(r.payload.as_str())
                .bind(0i64)
                .bind(None::<i64>)
                .bind(r.available_at)
                .bind(now);
        }
        q.execute(&mut tx).await?;
    }
    tx.commit().await?;
    Ok(stored)
}

/// Inserts the rows bound by [`postgres_insert`] from three arrays, in order, and notifies
/// the idle workers of each queue that got a ready job: one statement text for any chunk size,
/// and without unique keys one round trip per chunk (a statement is its own transaction).
const POSTGRES_INSERT: &str = "WITH ins AS (\
     INSERT INTO jobs (queue, payload, attempts, reserved_at, available_at, created_at) \
     SELECT q, p, 0, NULL, a, ? FROM UNNEST(?::text[], ?::text[], ?::bigint[]) \
     WITH ORDINALITY AS t(q, p, a, n) ORDER BY n \
     RETURNING queue, available_at) \
     SELECT pg_notify(?, r.queue) FROM (SELECT DISTINCT queue FROM ins WHERE available_at <= ?) AS r";

fn postgres_insert<'q>(
    q: crate::store::Query<'q>,
    rows: &[&PendingRow],
    now: i64,
) -> crate::store::Query<'q> {
    q.bind(now)
        .bind_array(rows.iter().map(|r| r.queue.clone()).collect::<Vec<_>>())
        .bind_array(rows.iter().map(|r| r.payload.clone()).collect::<Vec<_>>())
        .bind_array(rows.iter().map(|r| r.available_at).collect::<Vec<_>>())
        .bind(wakeups::CHANNEL)
        .bind(now)
}

async fn insert_unkeyed_postgres(
    db: &Db,
    rows: &[&PendingRow],
    now: i64,
) -> crate::store::Result<Vec<bool>> {
    postgres_insert(db.query(POSTGRES_INSERT), rows, now)
        .execute(db)
        .await?;
    Ok(vec![true; rows.len()])
}

/// Takes the oldest available jobs of `queue` with id at least `floor`, at most `max`, as one
/// atomic claim (see [`dialect::claim`]): their ids, payloads and attempts counted with this one.
async fn reserve_up_to(
    db: &Db,
    queue: &str,
    floor: i64,
    now: i64,
    expired: i64,
    max: i64,
) -> crate::store::Result<Vec<(i64, String, i64)>> {
    let postgres = db.backend() == crate::store::Backend::Postgres;
    let claimed = if postgres {
        // The same claim, in a function whose plan cannot depend on the statistics
        // (migrations/postgres/0011_jobs_reserve.sql); its rows come in no particular order.
        db.query("SELECT id, payload, attempts FROM conecta_reserve_jobs(?, ?, ?, ?, ?)")
            .bind(queue)
            .bind(floor)
            .bind(now)
            .bind(expired)
            .bind(max)
            .fetch_all(db)
            .await?
    } else {
        let pick = format!(
            "SELECT id FROM {} WHERE queue = ? AND id >= ? \
             AND ((reserved_at IS NULL AND available_at <= ?) OR reserved_at <= ?) \
             ORDER BY id LIMIT ?",
            db.backend().through_index("jobs", "jobs_queue_id")
        );
        dialect::claim(
            db,
            &Claim {
                table: "jobs",
                pick: &pick,
                pick_args: &[
                    Value::Text(queue.to_string()),
                    Value::Int(floor),
                    Value::Int(now),
                    Value::Int(expired),
                    Value::Int(max),
                ],
                set: "reserved_at = ?, attempts = attempts + 1",
                set_args: &[Value::Int(now)],
                columns: "id, payload, attempts",
            },
        )
        .await?
    };
    let mut taken = claimed
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect::<crate::store::Result<Vec<(i64, String, i64)>>>()?;
    if postgres {
        taken.sort_unstable_by_key(|r| r.0);
    }
    Ok(taken)
}
