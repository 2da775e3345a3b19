//! `schedule_leases`: the running-lock of an entry (docs/schedule.md overlap), a lease renewed while
//! its run is alive. An expired lease is taken over by exactly one process, which is told
//! whose run it was so that run can be recorded as abandoned instead of `running` forever.

use super::{Db, Result};
use chrono::{DateTime, Utc};

/// Removes one run's lease on one entry, whatever its expiry.
const RELEASE: &str = "DELETE FROM schedule_leases WHERE entry = ? AND run_id = ?";

/// Removes one run's lease on one entry if it expired before a cutoff.
const TAKE_EXPIRED: &str =
    "DELETE FROM schedule_leases WHERE entry = ? AND run_id = ? AND expires_at <= ?";

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
    let mut took_over = None;
    let dead: Option<i64> = db
        .query("SELECT run_id FROM schedule_leases WHERE entry = ? AND expires_at <= ?")
        .bind(entry)
        .bind(t)
        .scalar_optional(db)
        .await?;
    // Of several processes finding the same expired lease, one deletes it.
    if let Some(dead) = dead.filter(|d| !live.contains(d)) {
        let n = db
            .query(TAKE_EXPIRED)
            .bind(entry)
            .bind(dead)
            .bind(t)
            .execute(db)
            .await?;
        if n == 1 {
            took_over = Some(dead);
        }
    }
    let insert = db.backend().insert_ignore(
        "schedule_leases (entry, run_id, expires_at) VALUES (?, ?, ?)",
        "entry",
    );
    let try_insert = || {
        db.query(insert.as_str())
            .bind(entry)
            .bind(run_id)
            .bind(expires_at.timestamp_millis())
            .execute(db)
    };
    let mut inserted = try_insert().await? == 1;
    if !inserted {
        // Held, but maybe by a run that already ended and could not give the lease back
        // (its release failed during an outage): that is not a run holding the entry.
        let ended: Option<i64> = db
            .query(
                "SELECT l.run_id FROM schedule_leases l JOIN schedule_runs r ON r.id = l.run_id \
                 WHERE l.entry = ? AND r.outcome <> 'running'",
            )
            .bind(entry)
            .scalar_optional(db)
            .await?;
        if let Some(stale) = ended
            && db
                .query(RELEASE)
                .bind(entry)
                .bind(stale)
                .execute(db)
                .await?
                == 1
        {
            inserted = try_insert().await? == 1;
        }
    }
    Ok(match (inserted, took_over) {
        (true, Some(dead)) => Acquired::TookOver(dead),
        (true, None) => Acquired::Free,
        (false, _) => Acquired::Held,
    })
}

/// Extends `run_id`'s lease on `entry`; false if it no longer holds it.
pub async fn renew(db: &Db, entry: &str, run_id: i64, expires_at: DateTime<Utc>) -> Result<bool> {
    let n = db
        .query("UPDATE schedule_leases SET expires_at = ? WHERE entry = ? AND run_id = ?")
        .bind(expires_at.timestamp_millis())
        .bind(entry)
        .bind(run_id)
        .execute(db)
        .await?;
    Ok(n == 1)
}

/// Gives the entry back.
pub async fn release(db: &Db, entry: &str, run_id: i64) -> Result<()> {
    db.query(RELEASE)
        .bind(entry)
        .bind(run_id)
        .execute(db)
        .await?;
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
    let mut rows = Vec::new();
    for r in db
        .query("SELECT entry, run_id FROM schedule_leases WHERE expires_at <= ? ORDER BY entry")
        .bind(cutoff.timestamp_millis())
        .fetch_all(db)
        .await?
    {
        rows.push(Expired {
            entry: r.try_get(0)?,
            run_id: r.try_get(1)?,
        });
    }
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
    let n = db
        .query(TAKE_EXPIRED)
        .bind(entry)
        .bind(run_id)
        .bind(cutoff.timestamp_millis())
        .execute(db)
        .await?;
    Ok(n == 1)
}
