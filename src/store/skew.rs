//! Clock skew between this process and the database server.
//!
//! Leases, claims and reservations compare instants written by different processes, so their
//! clocks must roughly agree. Each daemon reads the server's time at start and every few
//! minutes (this is the one place conecta asks the database what time it is) and warns above
//! one second. Takeovers tolerate up to [`crate::clock::MAX_CLOCK_SKEW`].

use chrono::{DateTime, TimeDelta, Utc};

use super::{Db, Result};
use crate::clock::{MAX_CLOCK_SKEW, wall_now};

/// Skew above this is logged as a warning.
pub const WARN_ABOVE: TimeDelta = TimeDelta::seconds(1);

/// The database server's clock, or `None` on SQLite (which shares this host's clock).
pub async fn server_time(db: &Db) -> Result<Option<DateTime<Utc>>> {
    let Some(q) = db.backend().server_clock_ms() else {
        return Ok(None);
    };
    let ms: i64 = db.query(q).scalar(db).await?;
    Ok(DateTime::from_timestamp_millis(ms))
}

/// How far this host's clock is ahead of the server's (negative: behind), measured against
/// the midpoint of the round trip; `None` on SQLite.
pub async fn measure(db: &Db) -> Result<Option<TimeDelta>> {
    let before = wall_now();
    let Some(server) = server_time(db).await? else {
        return Ok(None);
    };
    let after = wall_now();
    let midpoint = before + (after - before) / 2;
    Ok(Some(midpoint - server))
}

/// Measures and logs: a warning above [`WARN_ABOVE`], naming the tolerated bound; at start
/// (`announce`) the figure is logged at info either way. Errors are left to the callers'
/// own outage handling (this check is advisory).
pub async fn check(db: &Db, announce: bool) {
    match measure(db).await {
        Ok(Some(skew)) if skew.abs() > WARN_ABOVE => tracing::warn!(
            skew_ms = skew.num_milliseconds(),
            tolerated_ms = MAX_CLOCK_SKEW.num_milliseconds(),
            "this host's clock differs from the database server's by {:.1} s: fix NTP; leases and claims tolerate up to {} s",
            skew.num_milliseconds() as f64 / 1000.0,
            MAX_CLOCK_SKEW.num_seconds()
        ),
        Ok(Some(skew)) if announce => {
            tracing::info!(
                skew_ms = skew.num_milliseconds(),
                "clock agrees with the database server"
            )
        }
        Ok(_) => {}
        Err(e) => tracing::debug!(error = %e, "cannot read the database server's clock"),
    }
}
