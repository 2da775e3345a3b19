//! `analytics:sync`: the daily fan-out. Walks approved tenants in chunks (500 by default) and
//! enqueues one `SyncTenantAnalytics(tenant, date)` per tenant with the unique key
//! `analytics:{tenant}:{date}`, all in one batch. The lock lives two days whatever happens to
//! the job (`unique_until = ttl`), so a second run for the same date enqueues nothing.
//!
//! `SyncTenantAnalytics` aggregates one tenant's local day (in the tenant's own time zone)
//! into `tenant_daily_analytics` with an upsert, so it is idempotent. `RecordInteraction`
//! stores one visitor event.

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::json;

use crate::queue::{JobContext, JobError, NewJob, Registry, UniqueUntil};
use crate::store::{analytics, tenants};

/// How long a `(tenant, date)` lock lives: past any rerun of the daily entry.
pub const UNIQUE_FOR: u64 = 2 * 86_400;

/// `analytics:sync` arguments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// Tenants per chunk (one round trip each), default 500.
    #[serde(default)]
    pub chunk: Option<u64>,
    /// The day to aggregate, default yesterday in `APP_TIMEZONE`.
    #[serde(default)]
    pub date: Option<NaiveDate>,
    /// Only this tenant.
    #[serde(default)]
    pub tenant: Option<i64>,
}

/// What a fan-out did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The batch.
    pub batch_id: String,
    /// The date.
    pub date: NaiveDate,
    /// Jobs enqueued.
    pub enqueued: u64,
    /// Tenants whose job for the date already exists.
    pub duplicates: u64,
}

/// Yesterday in `zone` as of `now`.
pub fn yesterday(now: DateTime<Utc>, zone: Tz) -> NaiveDate {
    let today = now.with_timezone(&zone).date_naive();
    today.pred_opt().unwrap_or(today)
}

/// The job for one tenant and day.
pub fn job(tenant: i64, date: NaiveDate) -> NewJob {
    NewJob::new(
        "SyncTenantAnalytics",
        json!({ "tenant": tenant, "date": date.to_string() }),
    )
    .unique(
        format!("analytics:{tenant}:{date}"),
        UNIQUE_FOR,
        UniqueUntil::Ttl,
    )
}

/// Fans out over approved tenants (or just `tenant`) for `date`, with a progress bar where
/// the runtime draws them. The batch counts the expected total in once (the same count sizes
/// the bar), and the next chunk of tenant ids is read while the current one is enqueued.
pub async fn sync(
    ctx: &JobContext,
    date: NaiveDate,
    chunk: u64,
    tenant: Option<i64>,
) -> Result<Report, crate::queue::QueueError> {
    let rt = &ctx.rt;
    let id = rt
        .batch_begin(&format!("analytics:sync {date}"), None)
        .await?;
    let expected = match tenant {
        Some(_) => 1,
        None => tenants::count_approved(&ctx.db).await? as i64,
    };
    rt.batch_expect(&id, expected).await?;
    let bar = rt
        .settings
        .progress
        .bar(&format!("analytics:sync {date}"), Some(expected as u64));
    let mut report = Report {
        batch_id: id.clone(),
        date,
        enqueued: 0,
        duplicates: 0,
    };
    let chunk = chunk.clamp(1, 10_000) as i64;
    let page = |after: i64| async move {
        match tenant {
            Some(t) if after == 0 => Ok(vec![t]),
            Some(_) => Ok(Vec::new()),
            None => tenants::approved_after(&ctx.db, after, chunk).await,
        }
    };
    let mut seen = 0i64;
    let mut ids = page(0).await?;
    while let Some(&last) = ids.last() {
        seen += ids.len() as i64;
        let jobs = ids.iter().map(|t| job(*t, date)).collect();
        let (next, added) = tokio::join!(page(last), rt.batch_add_expected(&id, jobs));
        let (enqueued, duplicates) = added?;
        report.enqueued += enqueued as u64;
        report.duplicates += duplicates as u64;
        bar.set(report.enqueued + report.duplicates);
        ids = next?;
    }
    // Tenants approved or dropped while the fan-out ran.
    rt.batch_expect(&id, seen - expected).await?;
    rt.batch_seal(&id).await?;
    Ok(report)
}

/// The UTC bounds `[start, end)` of `date` in `zone`: from its first local instant to the
/// next day's (23 or 25 hours long across a DST change).
pub fn day_bounds(date: NaiveDate, zone: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = |d: NaiveDate| -> DateTime<Utc> {
        let midnight = d.and_hms_opt(0, 0, 0).unwrap_or_default();
        match zone.from_local_datetime(&midnight).earliest() {
            Some(t) => t.with_timezone(&Utc),
            // Midnight skipped by a DST change: the day starts an hour later.
            None => zone
                .from_local_datetime(&(midnight + chrono::TimeDelta::hours(1)))
                .earliest()
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|| midnight.and_utc()),
        }
    };
    let next = date.checked_add_days(Days::new(1)).unwrap_or(date);
    (start(date), start(next))
}

/// `SyncTenantAnalytics` payload.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Day {
    /// The tenant.
    pub tenant: i64,
    /// The local date.
    pub date: NaiveDate,
}

/// `RecordInteraction` payload.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interaction {
    /// The tenant.
    pub tenant: i64,
    /// `view`, `click`, `add_to_cart`, …
    pub kind: String,
    /// Who.
    pub visitor: String,
}

/// Registers `analytics:sync`, `SyncTenantAnalytics` and `RecordInteraction`.
pub fn register(r: &mut Registry) {
    r.register("analytics:sync", |ctx: JobContext, a: Args| async move {
        let date = a
            .date
            .unwrap_or_else(|| yesterday(ctx.clock.now(), ctx.rt.settings.app_timezone));
        let report = sync(&ctx, date, a.chunk.unwrap_or(500), a.tenant)
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?;
        tracing::info!(
            date = %report.date,
            batch = %report.batch_id,
            enqueued = report.enqueued,
            duplicates = report.duplicates,
            "analytics fan-out done"
        );
        Ok(())
    });
    r.register(
        "SyncTenantAnalytics",
        |ctx: JobContext, d: Day| async move {
            let Some(tenant) = tenants::find(&ctx.db, d.tenant)
                .await
                .map_err(super::retry)?
            else {
                return Err(JobError::Fail(format!(
                    "tenant {} does not exist",
                    d.tenant
                )));
            };
            let zone = super::tenant_zone(tenant.id, &tenant.timezone)?;
            let (from, to) = day_bounds(d.date, zone);
            let figures = analytics::figures(&ctx.db, tenant.id, from, to)
                .await
                .map_err(super::retry)?;
            analytics::upsert(
                &ctx.db,
                tenant.id,
                &d.date.to_string(),
                &figures,
                ctx.clock.now(),
            )
            .await
            .map_err(super::retry)?;
            Ok(())
        },
    );
    r.register(
        "RecordInteraction",
        |ctx: JobContext, i: Interaction| async move {
            analytics::record_interaction(&ctx.db, i.tenant, &i.visitor, &i.kind, ctx.clock.now())
                .await
                .map_err(super::retry)
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_is_23_or_25_hours_across_dst() {
        let ny: Tz = "America/New_York".parse().unwrap();
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let hours = |date| {
            let (a, b) = day_bounds(date, ny);
            (b - a).num_hours()
        };
        assert_eq!(hours(d("2026-03-08")), 23);
        assert_eq!(hours(d("2026-11-01")), 25);
        assert_eq!(hours(d("2026-11-02")), 24);
        assert_eq!(
            day_bounds(d("2026-11-02"), ny).0,
            "2026-11-02T05:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        let now: DateTime<Utc> = "2026-11-28T03:00:00Z".parse().unwrap();
        assert_eq!(yesterday(now, ny), d("2026-11-26"));
        assert_eq!(yesterday(now, Tz::UTC), d("2026-11-27"));
    }
}
