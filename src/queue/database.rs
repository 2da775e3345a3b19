//! The `database` driver: Laravel's `jobs` table on SQLite, PostgreSQL or MySQL/MariaDB, and
//! unique locks in `job_locks`, taken in the same transaction as the job row.
//!
//! Reservation is one atomic step per queue: on PostgreSQL an `UPDATE … WHERE id = (SELECT …
//! FOR UPDATE SKIP LOCKED) RETURNING`, on MySQL/MariaDB (≥ 10.6) a `SELECT … FOR UPDATE SKIP
//! LOCKED` and `UPDATE` in one transaction, on SQLite a single `UPDATE … RETURNING`, which
//! takes SQLite's write lock for the whole statement (what `BEGIN IMMEDIATE` would give a
//! multi-statement transaction). MySQL connections run at READ COMMITTED so concurrent
//! enqueues of one unique key never deadlock on gap locks.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Enqueued, LockInfo, NewJob, Queue, QueueDepth, Reserved, Result, decode};
use crate::on_pool;
use crate::store::{Backend, Db, in_list, retrying, value_groups};

/// Jobs in the `jobs` table.
#[derive(Debug)]
pub struct DatabaseQueue {
    db: Db,
    retry_after: i64,
    floors: Mutex<HashMap<String, i64>>,
    scans: AtomicU64,
}

impl DatabaseQueue {
    /// A queue on `db`; reserved jobs come back after `retry_after`.
    pub fn new(db: Db, retry_after: Duration) -> Self {
        Self {
            db,
            retry_after: retry_after.as_secs() as i64,
            floors: Mutex::new(HashMap::new()),
            scans: AtomicU64::new(0),
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
        for job in &jobs {
            let envelope = job.envelope(now);
            let key = job.unique.as_ref().map(|u| u.key.clone());
            if let Some(k) = &key
                && !seen.insert(k.clone())
            {
                answers.push(Some(Enqueued::Duplicate));
                rows.push(None);
                continue;
            }
            answers.push(None);
            rows.push(Some(PendingRow {
                queue: job.queue.clone(),
                payload: serde_json::to_string(&envelope)?,
                available_at: t + job.delay as i64,
                uuid: envelope.uuid,
                key,
                expires_at: t + job.unique.as_ref().map(|u| u.ttl as i64).unwrap_or(0),
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

    async fn reserve(&self, queues: &[String], now: DateTime<Utc>) -> Result<Option<Reserved>> {
        let t = now.timestamp();
        let expired = t - self.retry_after;
        for queue in queues {
            // Start the scan at the last id this process took: rows below it were taken or
            // not yet due then, and rescanning the dead rows a busy queue leaves behind (until
            // vacuum) made every reservation slower. A full scan runs whenever the shortcut
            // finds nothing and every 256th time, so released and redelivered jobs below the
            // floor are found promptly.
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
            let mut found: Option<(i64, String, i64)> =
                retrying(|| reserve_one(&self.db, queue, floor, t, expired)).await?;
            if found.is_none() && floor > 0 {
                found = retrying(|| reserve_one(&self.db, queue, 0, t, expired)).await?;
            }
            if let Some((id, raw, attempts)) = found {
                self.floors
                    .lock()
                    .expect("floors")
                    .insert(queue.clone(), id);
                let envelope = decode(&raw);
                return Ok(Some(Reserved {
                    handle: id.to_string(),
                    queue: queue.clone(),
                    raw,
                    attempts: attempts as u32,
                    envelope,
                }));
            }
        }
        Ok(None)
    }

    async fn delete(&self, job: &Reserved) -> Result<()> {
        let id: i64 = job.handle.parse().unwrap_or(-1);
        let q = self.db.sql("DELETE FROM jobs WHERE id = ?");
        on_pool!(&self.db, p => sqlx::query(&q).bind(id).execute(p).await?.rows_affected());
        Ok(())
    }

    async fn release(&self, job: &Reserved, delay: Duration, now: DateTime<Utc>) -> Result<()> {
        let id: i64 = job.handle.parse().unwrap_or(-1);
        let q = self
            .db
            .sql("UPDATE jobs SET reserved_at = NULL, available_at = ? WHERE id = ?");
        let at = now.timestamp() + delay.as_secs() as i64;
        on_pool!(&self.db, p => sqlx::query(&q).bind(at).bind(id).execute(p).await?.rows_affected());
        Ok(())
    }

    async fn unlock(&self, _queue: &str, key: &str, owner: &str) -> Result<bool> {
        let q = self
            .db
            .sql("DELETE FROM job_locks WHERE lock_key = ? AND owner = ?");
        let n = on_pool!(&self.db, p => sqlx::query(&q).bind(key).bind(owner).execute(p).await?.rows_affected());
        Ok(n > 0)
    }

    async fn force_unlock(&self, key: &str) -> Result<bool> {
        let q = self.db.sql("DELETE FROM job_locks WHERE lock_key = ?");
        let n =
            on_pool!(&self.db, p => sqlx::query(&q).bind(key).execute(p).await?.rows_affected());
        Ok(n > 0)
    }

    async fn locks(&self, prefix: &str, now: DateTime<Utc>) -> Result<Vec<LockInfo>> {
        // MySQL reports the case-sensitive (binary-collated) key as bytes; read it as text.
        let key = match self.db.backend() {
            Backend::MySql => "CAST(lock_key AS CHAR)",
            Backend::Sqlite | Backend::Postgres => "lock_key",
        };
        let q = self
            .db
            .sql(&format!(
                "SELECT {key}, owner, expires_at FROM job_locks WHERE expires_at > ? ORDER BY lock_key"
            ))
            .into_owned();
        let rows: Vec<(String, String, i64)> = on_pool!(&self.db, p => {
            sqlx::query(&q).bind(now.timestamp()).fetch_all(p).await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .collect::<std::result::Result<Vec<_>, sqlx::Error>>()?
        });
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
        let q = self.db.sql(
            "SELECT queue, \
             COUNT(CASE WHEN reserved_at IS NULL AND available_at <= ? THEN 1 END), \
             COUNT(CASE WHEN reserved_at IS NOT NULL THEN 1 END), \
             COUNT(CASE WHEN reserved_at IS NULL AND available_at > ? THEN 1 END) \
             FROM jobs GROUP BY queue ORDER BY queue",
        );
        let t = now.timestamp();
        let rows = on_pool!(&self.db, p => {
            sqlx::query(&q).bind(t).bind(t).fetch_all(p).await?
                .iter()
                .map(|r| Ok(QueueDepth {
                    queue: r.try_get(0)?,
                    pending: r.try_get::<i64, _>(1)? as u64,
                    reserved: r.try_get::<i64, _>(2)? as u64,
                    delayed: r.try_get::<i64, _>(3)? as u64,
                }))
                .collect::<std::result::Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(rows)
    }

    async fn clear(&self, queue: &str, lock_prefix: &str) -> Result<()> {
        let jobs = self.db.sql("DELETE FROM jobs WHERE queue = ?");
        let keys: Vec<String> = self
            .locks(lock_prefix, DateTime::<Utc>::MIN_UTC)
            .await?
            .into_iter()
            .map(|l| l.key)
            .collect();
        on_pool!(&self.db, p => sqlx::query(&jobs).bind(queue).execute(p).await?.rows_affected());
        for part in keys.chunks(500) {
            let q = self
                .db
                .sql(&format!(
                    "DELETE FROM job_locks WHERE lock_key IN ({})",
                    in_list(part.len())
                ))
                .into_owned();
            on_pool!(&self.db, p => {
                let mut query = sqlx::query(&q);
                for k in part {
                    query = query.bind(k);
                }
                query.execute(p).await?.rows_affected()
            });
        }
        Ok(())
    }

    async fn purge(&self) -> Result<()> {
        on_pool!(&self.db, p => {
            sqlx::query("DELETE FROM jobs").execute(p).await?;
            sqlx::query("DELETE FROM job_locks").execute(p).await?;
        });
        Ok(())
    }
}

/// Inserts one chunk in one transaction; for each row, whether it was stored (false: its
/// unique key was held).
async fn insert_chunk(
    db: &Db,
    rows: &[&PendingRow],
    now: i64,
) -> std::result::Result<Vec<bool>, sqlx::Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let keyed: Vec<&&PendingRow> = rows.iter().filter(|r| r.key.is_some()).collect();
    let ignore_insert = match db.backend() {
        Backend::Sqlite => {
            "INSERT OR IGNORE INTO job_locks (lock_key, owner, expires_at, created_at) VALUES "
        }
        Backend::MySql => {
            "INSERT IGNORE INTO job_locks (lock_key, owner, expires_at, created_at) VALUES "
        }
        Backend::Postgres => {
            "INSERT INTO job_locks (lock_key, owner, expires_at, created_at) VALUES "
        }
    };
    let conflict = if db.backend() == Backend::Postgres {
        " ON CONFLICT (lock_key) DO NOTHING"
    } else {
        ""
    };
    let delete_sql = db
        .sql(&format!(
            "DELETE FROM job_locks WHERE expires_at <= ? AND lock_key IN ({})",
            in_list(keyed.len())
        ))
        .into_owned();
    let lock_sql = db
        .sql(&format!(
            "{ignore_insert}{}{conflict}",
            value_groups(keyed.len(), 4)
        ))
        .into_owned();
    let owners_sql = db
        .sql(&format!(
            "SELECT lock_key, owner FROM job_locks WHERE lock_key IN ({}){}",
            in_list(keyed.len()),
            if db.backend() == Backend::MySql {
                " LOCK IN SHARE MODE"
            } else {
                ""
            }
        ))
        .into_owned();

    on_pool!(db, p => {
        let mut tx = p.begin().await?;
        let mut won: HashSet<String> = HashSet::new();
        if !keyed.is_empty() {
            let mut q = sqlx::query(&delete_sql).bind(now);
            for r in &keyed {
                q = q.bind(r.key.as_deref());
            }
            q.execute(&mut *tx).await?;
            let mut q = sqlx::query(&lock_sql);
            for r in &keyed {
                q = q.bind(r.key.as_deref()).bind(&r.uuid).bind(r.expires_at).bind(now);
            }
            q.execute(&mut *tx).await?;
            let mut q = sqlx::query(&owners_sql);
            for r in &keyed {
                q = q.bind(r.key.as_deref());
            }
            for row in q.fetch_all(&mut *tx).await? {
                let owner: String = row.try_get(1)?;
                won.insert(owner);
            }
        }
        let stored: Vec<bool> = rows.iter().map(|r| r.key.is_none() || won.contains(&r.uuid)).collect();
        let to_insert: Vec<&&PendingRow> = rows.iter().zip(&stored).filter(|(_, s)| **s).map(|(r, _)| r).collect();
        for part in to_insert.chunks(1000) {
            let sql = db.sql(&format!(
                "INSERT INTO jobs (queue, payload, attempts, reserved_at, available_at, created_at) VALUES {}",
                value_groups(part.len(), 6)
            )).into_owned();
            let mut q = sqlx::query(&sql);
            for r in part {
                q = q.bind(&r.queue).bind(&r.payload).bind(0i64).bind(None::<i64>).bind(r.available_at).bind(now);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(stored)
    })
}

const AVAILABLE: &str =
    "queue = ? AND id >= ? AND ((reserved_at IS NULL AND available_at <= ?) OR reserved_at <= ?)";

async fn reserve_one(
    db: &Db,
    queue: &str,
    floor: i64,
    now: i64,
    expired: i64,
) -> std::result::Result<Option<(i64, String, i64)>, sqlx::Error> {
    match db {
        Db::Sqlite(_) | Db::Postgres(_) => {
            // One statement: SQLite holds its write lock for all of it; PostgreSQL skips rows
            // other reservers have locked.
            let skip_locked = if db.backend() == Backend::Postgres {
                " FOR UPDATE SKIP LOCKED"
            } else {
                ""
            };
            let sql = db
                .sql(&format!(
                    "UPDATE jobs SET reserved_at = ?, attempts = attempts + 1 WHERE id = \
                     (SELECT id FROM jobs WHERE {AVAILABLE} ORDER BY id LIMIT 1{skip_locked}) \
                     RETURNING id, payload, attempts"
                ))
                .into_owned();
            on_pool!(db, p => {
                let row = sqlx::query(&sql)
                    .bind(now)
                    .bind(queue)
                    .bind(floor)
                    .bind(now)
                    .bind(expired)
                    .fetch_optional(p)
                    .await?;
                row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))).transpose()
            })
        }
        Db::MySql(p) => {
            let mut tx = p.begin().await?;
            let sql = format!(
                "SELECT id, payload, attempts FROM jobs WHERE {AVAILABLE} ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
            );
            let row = sqlx::query(&sql)
                .bind(queue)
                .bind(floor)
                .bind(now)
                .bind(expired)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = row else {
                tx.commit().await?;
                return Ok(None);
            };
            let id: i64 = row.try_get(0)?;
            let payload: String = row.try_get(1)?;
            let attempts: i64 = row.try_get(2)?;
            sqlx::query("UPDATE jobs SET reserved_at = ?, attempts = attempts + 1 WHERE id = ?")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Some((id, payload, attempts + 1)))
        }
    }
}
