//! `schedule_leases`: the running-lock of an entry (SPEC §3.2 overlap), a lease renewed while
//! its run is alive. An expired lease is taken over by exactly one process, which is told
//! whose run it was so that run can be recorded as abandoned instead of `running` forever.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Backend, Db, Result};
use crate::on_pool;

/// Removes one run's lease on one entry, whatever its expiry.
const RELEASE: &str = "DELETE FROM schedule_leases WHERE entry = ? AND run_id = ?";

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

/// Tries to take `entry` for `run_id` until `expires_at`, at `now`. An expired lease held by
/// one of `live` (runs the caller knows are alive, whose renewals failed during an outage) is
/// not taken over.
pub async fn acquire(
    db: &Db,
    entry: &str,
    run_id: i64,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    live: &[i64],
) -> Result<Acquired> {
    // Expired by more than the tolerated clock skew: a renewer whose clock runs a little
    // behind ours is not taken for dead.
    let t = (now - crate::clock::MAX_CLOCK_SKEW).timestamp_millis();
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
    let ended_holder = db.sql(
        "SELECT l.run_id FROM schedule_leases l JOIN schedule_runs r ON r.id = l.run_id \
         WHERE l.entry = ? AND r.outcome <> 'running'",
    );
    let delete_ended = db.sql(RELEASE);
    let (took_over, inserted) = on_pool!(db, p => {
        let mut took_over = None;
        if let Some(r) = sqlx::query(&find).bind(entry).bind(t).fetch_optional(p).await? {
            let dead: i64 = r.try_get(0)?;
            // Of several processes finding the same expired lease, one deletes it.
            if !live.contains(&dead) {
                let n = sqlx::query(&delete).bind(entry).bind(dead).bind(t).execute(p).await?.rows_affected();
                if n == 1 {
                    took_over = Some(dead);
                }
            }
        }
        let mut n = sqlx::query(&insert).bind(entry).bind(run_id).bind(expires_at.timestamp_millis()).execute(p).await?.rows_affected();
        if n == 0 {
            // Held, but maybe by a run that already ended and could not give the lease back
            // (its release failed during an outage): that is not a run holding the entry.
            if let Some(r) = sqlx::query(&ended_holder).bind(entry).fetch_optional(p).await? {
                let stale: i64 = r.try_get(0)?;
                let gone = sqlx::query(&delete_ended).bind(entry).bind(stale).execute(p).await?.rows_affected();
                if gone == 1 {
                    n = sqlx::query(&insert).bind(entry).bind(run_id).bind(expires_at.timestamp_millis()).execute(p).await?.rows_affected();
                }
            }
        }
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
    let q = db.sql(RELEASE);
    on_pool!(db, p => sqlx::query(&q).bind(entry).bind(run_id).execute(p).await?.rows_affected());
    Ok(())
}

/// A lease that ran out: its entry and the run that held it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    /// The entry (or `ENTRY#buffered`, the waiting seat).
    pub entry: String,
    /// The run that held it.
    pub run_id: i64,
}

/// Leases that expired before `cutoff`: their holders stopped renewing.
pub async fn expired(db: &Db, cutoff: DateTime<Utc>) -> Result<Vec<Expired>> {
    let q =
        db.sql("SELECT entry, run_id FROM schedule_leases WHERE expires_at <= ? ORDER BY entry");
    let rows = on_pool!(db, p => {
        let mut out = Vec::new();
        for r in sqlx::query(&q).bind(cutoff.timestamp_millis()).fetch_all(p).await? {
            out.push(Expired { entry: r.try_get(0)?, run_id: r.try_get(1)? });
        }
        out
    });
    Ok(rows)
}

/// Removes `run_id`'s lease on `entry` if it is still expired at `cutoff`; true if this call
/// removed it (of several reapers, one does).
pub async fn take_expired(
    db: &Db,
    entry: &str,
    run_id: i64,
    cutoff: DateTime<Utc>,
) -> Result<bool> {
    let q =
        db.sql("DELETE FROM schedule_leases WHERE entry = ? AND run_id = ? AND expires_at <= ?");
    let n = on_pool!(db, p => sqlx::query(&q).bind(entry).bind(run_id).bind(cutoff.timestamp_millis()).execute(p).await?.rows_affected());
    Ok(n == 1)
}
