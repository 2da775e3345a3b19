//! `queue_minutes`: jobs finished per queue and minute, for the whole fleet. Each worker
//! counts what it finishes and adds its counts with its heartbeat, so the dashboard's chart
//! and `/metrics` show the same figures whichever process serves them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{Db, Result};

/// Counts of one minute of one queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Jobs that finished (succeeded or were skipped).
    pub processed: i64,
    /// Jobs that failed for good (moved to `failed_jobs`).
    pub failed: i64,
}

/// Counts by (minute, queue); minute is unix seconds / 60.
pub type Minutes = BTreeMap<(i64, String), Counts>;

/// The minute `t` falls in.
pub fn minute_of(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(60)
}

/// Adds `counts` to the stored rows, one upsert per row.
pub async fn add(db: &Db, counts: &Minutes) -> Result<()> {
    if counts.is_empty() {
        return Ok(());
    }
    let upsert = db.backend().upsert(
        "queue_minutes",
        "(minute, queue, processed, failed) VALUES (?, ?, ?, ?)",
        "minute, queue",
        &[
            ("processed", "OLD(processed) + NEW(processed)"),
            ("failed", "OLD(failed) + NEW(failed)"),
        ],
    );
    let mut tx = db.begin().await?;
    for ((minute, queue), c) in counts {
        db.query(upsert.as_str())
            .bind(*minute)
            .bind(queue.as_str())
            .bind(c.processed)
            .bind(c.failed)
            .execute(&mut tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The rows from minute `from` on.
pub async fn since(db: &Db, from: i64) -> Result<Minutes> {
    let rows = db
        .query(
            "SELECT minute, queue, processed, failed FROM queue_minutes WHERE minute >= ? \
             ORDER BY minute, queue",
        )
        .bind(from)
        .fetch_all(db)
        .await?;
    let mut out = Minutes::new();
    for r in rows {
        out.insert(
            (r.try_get(0)?, r.try_get(1)?),
            Counts {
                processed: r.try_get(2)?,
                failed: r.try_get(3)?,
            },
        );
    }
    Ok(out)
}
