//! `schedule_leases`: the running-lock of an entry (SPEC §3.2 overlap), a lease renewed while
//! its run is alive. An expired lease is taken over by exactly one process, which is told
//! whose run it was so that run can be recorded as abandoned instead of `running` forever.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Backend, Db, Result};
use crate::on_pool;

/// The answer to [`acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// The entry was free; this run holds it now.
    Free,
    /// An expired lease of run `.0` was taken over; that run's process is gone.
    TookOver(i64),
    /// Another live run holds it.
    Held,
}

/// Tries to take `entry` for `run_id` until `expires_at`, at `now`.
pub async fn acquire(
    db: &Db,
    entry: &str,
    run_id: i64,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<Acquired> {
    let t = now.timestamp_millis();
    let find = db.sql("SELECT run_id FROM schedule_leases WHERE entry = ? AND expires_at <= ?");
    let delete =
        db.sql("DELETE FROM schedule_leases WHERE entry = ? AND run_id = ? AND expires_at <= ?");
    let (insert, conflict) = match db.backend() {
        Backend::Sqlite => ("INSERT OR IGNORE INTO", ""),
        Backend::MySql => ("INSERT IGNORE INTO", ""),
        Backend::Postgres => ("INSERT INTO", " ON CONFLICT (entry) DO NOTHING"),
    };
    let insert = db
        .sql(&format!(
            "{insert} schedule_leases (entry, run_id, expires_at) VALUES (?, ?, ?){conflict}"
        ))
        .into_owned();
    let (took_over, inserted) = on_pool!(db, p => {
        let mut took_over = None;
        if let Some(r) = sqlx::query(&find).bind(entry).bind(t).fetch_optional(p).await? {
            let dead: i64 = r.try_get(0)?;
            // Of several processes finding the same expired lease, one deletes it.
            let n = sqlx::query(&delete).bind(entry).bind(dead).bind(t).execute(p).await?.rows_affected();
            if n == 1 {
                took_over = Some(dead);
            }
        }
        let n = sqlx::query(&insert).bind(entry).bind(run_id).bind(expires_at.timestamp_millis()).execute(p).await?.rows_affected();
        (took_over, n == 1)
    });
    Ok(match (inserted, took_over) {
        (true, Some(dead)) => Acquired::TookOver(dead),
        (true, None) => Acquired::Free,
        (false, _) => Acquired::Held,
    })
}

/// Extends `run_id`'s lease on `entry`; false if it no longer holds it.
pub async fn renew(db: &Db, entry: &str, run_id: i64, expires_at: DateTime<Utc>) -> Result<bool> {
    let q = db.sql("UPDATE schedule_leases SET expires_at = ? WHERE entry = ? AND run_id = ?");
    let n = on_pool!(db, p => sqlx::query(&q).bind(expires_at.timestamp_millis()).bind(entry).bind(run_id).execute(p).await?.rows_affected());
    Ok(n == 1)
}

/// Gives the entry back.
pub async fn release(db: &Db, entry: &str, run_id: i64) -> Result<()> {
    let q = db.sql("DELETE FROM schedule_leases WHERE entry = ? AND run_id = ?");
    on_pool!(db, p => sqlx::query(&q).bind(entry).bind(run_id).execute(p).await?.rows_affected());
    Ok(())
}
