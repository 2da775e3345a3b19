//! `ProcessPaymentWebhook`: applies a verified, stored payment event to its order, once, and
//! `NotifyPaymentReview`: tells the operators about a payment that needs a person.
//!
//! The event body is what the gateway posted to `POST /webhooks/payments`:
//! `{"id": "evt_…", "type": "payment.succeeded", "data": {"order_id": 41, "amount_cents": 950}}`.
//!
//! - `payment.succeeded`: a pending order of that amount becomes `paid` (`paid_at`). An order
//!   already paid is left alone (a repeated event). An order that is no longer pending
//!   (cancelled as stale, say) is not paid silently: the payment goes to `payment_reviews`
//!   with a `PaymentNeedsReview` outbox event.
//! - `payment.failed`: a pending order becomes `payment_failed`.
//! - `refund.succeeded`: a paid order becomes `refunded` (`refunded_at`).
//!
//! An unknown order, or an amount that does not match the order's total, fails the job with a
//! message that says which.

use serde::Deserialize;

use super::{retry, send_mail};
use crate::mail::Mail;
use crate::queue::{JobContext, JobError, Registry};
use crate::store::payments::{self, Review};

/// The job's payload.
#[derive(Debug, Deserialize)]
pub struct Args {
    /// The stored event's id.
    pub event_id: String,
}

/// The part of an event body conecta reads.
#[derive(Debug, Deserialize)]
pub struct Event {
    /// The event's id (unique per event at the gateway).
    pub id: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its data.
    #[serde(default)]
    pub data: EventData,
}

/// What a payment event is about.
#[derive(Debug, Default, Deserialize)]
pub struct EventData {
    /// The order.
    pub order_id: Option<i64>,
    /// The amount, in cents.
    pub amount_cents: Option<i64>,
}

/// What applying an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The order changed.
    Changed(&'static str),
    /// It had changed before (a repeated event): nothing to do.
    AlreadyDone,
    /// The payment went to `payment_reviews`.
    Review(String),
    /// An event type conecta does not act on.
    Ignored,
}

/// Applies stored event `event_id`.
pub async fn apply(ctx: &JobContext, event_id: &str) -> Result<Applied, JobError> {
    let now = ctx.clock.now();
    let stored = payments::event(&ctx.db, event_id)
        .await
        .map_err(retry)?
        .ok_or_else(|| JobError::Fail(format!("payment event {event_id} is not stored")))?;
    let event: Event = serde_json::from_str(&stored.body).map_err(|e| {
        JobError::Fail(format!(
            "payment event {event_id}: body is not a payment event: {e}"
        ))
    })?;
    let (from, to, stamp) = match event.kind.as_str() {
        "payment.succeeded" => ("pending", "paid", Some("paid_at")),
        "payment.failed" => ("pending", "payment_failed", None),
        "refund.succeeded" => ("paid", "refunded", Some("refunded_at")),
        _ => {
            payments::mark_processed(&ctx.db, event_id, now)
                .await
                .map_err(retry)?;
            return Ok(Applied::Ignored);
        }
    };
    let order_id = event.data.order_id.ok_or_else(|| {
        JobError::Fail(format!(
            "payment event {event_id} names no order (data.order_id)"
        ))
    })?;
    let order = payments::order(&ctx.db, order_id)
        .await
        .map_err(retry)?
        .ok_or_else(|| {
            JobError::Fail(format!(
                "payment event {event_id}: order {order_id} does not exist"
            ))
        })?;
    let amount = event.data.amount_cents.unwrap_or(order.total_cents);
    if event.kind != "payment.failed" && amount != order.total_cents {
        return Err(JobError::Fail(format!(
            "payment event {event_id}: amount {amount} does not match order {order_id}'s total {}",
            order.total_cents
        )));
    }
    let changed = payments::transition(&ctx.db, order_id, from, to, stamp, now)
        .await
        .map_err(retry)?;
    let applied = if changed {
        Applied::Changed(to)
    } else {
        // Re-read: another run may have changed it between our read and our update.
        let now_status = payments::order(&ctx.db, order_id)
            .await
            .map_err(retry)?
            .map(|o| o.status)
            .unwrap_or_default();
        if now_status == to {
            Applied::AlreadyDone
        } else if event.kind == "payment.succeeded" {
            let reason = format!(
                "order {order_id} is {now_status}, not pending: the payment was not applied"
            );
            payments::review(
                &ctx.db,
                &Review {
                    event_id: event_id.to_string(),
                    event_type: event.kind.clone(),
                    order_id,
                    amount_cents: amount,
                    reason: reason.clone(),
                    created_at: now.timestamp(),
                },
            )
            .await
            .map_err(retry)?;
            Applied::Review(reason)
        } else {
            // A failure or refund for an order in another state changes nothing.
            Applied::AlreadyDone
        }
    };
    payments::mark_processed(&ctx.db, event_id, now)
        .await
        .map_err(retry)?;
    Ok(applied)
}

/// The operators' mail of a `PaymentNeedsReview` event.
#[derive(Debug, Deserialize)]
struct NeedsReview {
    outbox_id: i64,
    event_id: String,
    order_id: i64,
    amount_cents: i64,
    reason: String,
}

/// Registers the payment jobs.
pub fn register(r: &mut Registry) {
    r.register(
        "ProcessPaymentWebhook",
        |ctx: JobContext, a: Args| async move {
            let applied = apply(&ctx, &a.event_id).await?;
            tracing::info!(event = %a.event_id, applied = ?applied, "payment event applied");
            Ok(())
        },
    );
    r.register("NotifyPaymentReview", |ctx: JobContext, n: NeedsReview| async move {
        let to = ctx.rt.settings.operators_email.clone();
        let mail = Mail {
            key: format!("outbox-{}", n.outbox_id),
            to,
            subject: format!("Payment for order #{} needs review", n.order_id),
            body: format!(
                "Payment event {} ({:.2}) could not be applied: {}.\nSee `conecta payments reviews`.",
                n.event_id,
                n.amount_cents as f64 / 100.0,
                n.reason
            ),
        };
        send_mail(&ctx, &mail).await
    });
}
