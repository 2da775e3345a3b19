//! `orders:release-stale`: cancels PENDING orders older than `older_than` (30 minutes by
//! default), restoring each item's stock, one transaction per order with its `OrderCancelled`
//! outbox row. The store's guarded update makes concurrent runs safe: an order is released
//! once, its stock restored once. And `SendOrderCancellation`, the email that event becomes.

use chrono::TimeDelta;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;

use crate::mail::Mail;
use crate::queue::{JobContext, JobError, Registry};
use crate::store::{self, orders, retrying};

/// Orders released at once; each is its own transaction.
const CONCURRENCY: usize = 16;

/// `orders:release-stale` arguments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// Age past which a pending order is stale (default 30 minutes).
    #[serde(default)]
    pub older_than: Option<Value>,
    /// Only this tenant's orders.
    #[serde(default)]
    pub tenant: Option<i64>,
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Orders this run cancelled.
    pub released: u64,
    /// Stale orders another run (or a payment) got to first.
    pub skipped: u64,
}

fn older_than(v: Option<&Value>) -> Result<TimeDelta, JobError> {
    let secs = match v {
        None => 30 * 60,
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|v| *v <= crate::duration::MAX.as_secs())
            .ok_or_else(|| {
                JobError::Fail(format!(
                    "older_than: expected seconds up to a year (31536000), got: {n}"
                ))
            })?,
        Some(Value::String(s)) => crate::duration::parse(s)
            .map_err(|e| JobError::Fail(format!("older_than: {e}")))?
            .as_secs(),
        Some(other) => {
            return Err(JobError::Fail(format!(
                "older_than: expected a duration like \"30m\", got: {other}"
            )));
        }
    };
    Ok(TimeDelta::seconds(secs as i64))
}

/// Releases every order stale as of now, `CONCURRENCY` at a time; `on_progress` gets the
/// running count.
pub async fn release_stale(
    ctx: &JobContext,
    older_than: TimeDelta,
    tenant: Option<i64>,
    mut on_progress: impl FnMut(u64),
) -> store::Result<Report> {
    let cutoff = ctx.clock.now() - older_than;
    let mut report = Report::default();
    let mut after = None;
    loop {
        let page = orders::stale(&ctx.db, cutoff, tenant, after, 1_000).await?;
        let Some(last) = page.last() else {
            return Ok(report);
        };
        after = Some((last.created_at, last.id));
        let db = ctx.db.clone();
        let clock = ctx.clock.clone();
        let mut results = futures::stream::iter(page.into_iter().map(move |order| {
            let (db, clock) = (db.clone(), clock.clone());
            tokio::spawn(
                async move { retrying(|| orders::release(&db, &order, clock.now())).await },
            )
        }))
        .buffer_unordered(CONCURRENCY);
        while let Some(released) = results.next().await {
            let released = released
                .map_err(|e| store::StoreError::Internal(format!("release task died: {e}")))?;
            if released? {
                report.released += 1;
            } else {
                report.skipped += 1;
            }
            on_progress(report.released + report.skipped);
        }
    }
}

/// `SendOrderCancellation` payload (the `OrderCancelled` event).
#[derive(Debug, Clone, Deserialize)]
pub struct Cancelled {
    /// The outbox message it came from.
    pub outbox_id: i64,
    /// The order.
    pub order_id: i64,
    /// Who to tell.
    pub customer_email: String,
    /// Its total, in cents.
    #[serde(default)]
    pub total_cents: i64,
}

/// Registers `orders:release-stale` and `SendOrderCancellation`.
pub fn register(r: &mut Registry) {
    r.register(
        "orders:release-stale",
        |ctx: JobContext, a: Args| async move {
            let age = older_than(a.older_than.as_ref())?;
            let total = orders::count_stale(&ctx.db, ctx.clock.now() - age, a.tenant)
                .await
                .map_err(super::retry)?;
            let bar = ctx
                .rt
                .settings
                .progress
                .bar("orders:release-stale", Some(total));
            let report = release_stale(&ctx, age, a.tenant, |n| bar.set(n))
                .await
                .map_err(super::retry)?;
            tracing::info!(
                released = report.released,
                skipped = report.skipped,
                "stale orders released"
            );
            Ok(())
        },
    );
    r.register(
        "SendOrderCancellation",
        |ctx: JobContext, c: Cancelled| async move {
            let mail = Mail {
                key: format!("outbox-{}", c.outbox_id),
                to: c.customer_email.clone(),
                subject: format!("Your order #{} was cancelled", c.order_id),
                body: format!(
                    "Your order #{} ({:.2}) was not paid within 30 minutes and has been cancelled.\nThe items are back in stock if you want to order again.",
                    c.order_id,
                    c.total_cents as f64 / 100.0
                ),
            };
            super::send_mail(&ctx, &mail).await
        },
    );
}
