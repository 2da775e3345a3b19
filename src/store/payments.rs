//! Payment webhooks: each verified event stored once, the order changes they make, and the
//! payments that need a person (`payment_reviews`).
//!
//! Every change is guarded by the order's status (`… WHERE status = 'pending'`), so applying an
//! event twice changes nothing the second time, and a payment racing `orders:release-stale`
//! either pays the order or finds it cancelled, never both.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use super::outbox::{self, NewMessage};
use super::{Db, Result, Row};

/// Stores a verified event; false when one with this id was stored before (a re-delivery).
pub async fn store_event(
    db: &Db,
    event_id: &str,
    event_type: &str,
    body: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let insert = db.backend().insert_ignore(
        "payment_events (event_id, event_type, body, received_at) VALUES (?, ?, ?, ?)",
        "event_id",
    );
    let n = db
        .query(insert)
        .bind(event_id)
        .bind(event_type)
        .bind(body)
        .bind(now.timestamp())
        .execute(db)
        .await?;
    Ok(n == 1)
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its type, e.g. `payment.succeeded`.
    pub event_type: String,
    /// The raw body as received.
    pub body: String,
    /// When it was applied, if it was.
    pub processed_at: Option<i64>,
}

/// The stored event `event_id`.
pub async fn event(db: &Db, event_id: &str) -> Result<Option<StoredEvent>> {
    db.query("SELECT event_type, body, processed_at FROM payment_events WHERE event_id = ?")
        .bind(event_id)
        .fetch_optional_as(db, |r: &Row| {
            Ok(StoredEvent {
                event_type: r.try_get(0)?,
                body: r.try_get(1)?,
                processed_at: r.try_get(2)?,
            })
        })
        .await
}

/// How many events are stored with this id (0 or 1; for tests and checks).
pub async fn count_events(db: &Db, event_id: &str) -> Result<i64> {
    db.query("SELECT COUNT(*) FROM payment_events WHERE event_id = ?")
        .bind(event_id)
        .scalar(db)
        .await
}

/// Records that `event_id` was applied.
pub async fn mark_processed(db: &Db, event_id: &str, now: DateTime<Utc>) -> Result<()> {
    db.query(
        "UPDATE payment_events SET processed_at = ? WHERE event_id = ? AND processed_at IS NULL",
    )
    .bind(now.timestamp())
    .bind(event_id)
    .execute(db)
    .await?;
    Ok(())
}

/// An order as a payment sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderState {
    /// `pending`, `paid`, `cancelled`, `payment_failed` or `refunded`.
    pub status: String,
    /// What it costs.
    pub total_cents: i64,
}

/// Order `id`'s status and total.
pub async fn order(db: &Db, id: i64) -> Result<Option<OrderState>> {
    db.query("SELECT status, total_cents FROM orders WHERE id = ?")
        .bind(id)
        .fetch_optional_as(db, |r: &Row| {
            Ok(OrderState {
                status: r.try_get(0)?,
                total_cents: r.try_get(1)?,
            })
        })
        .await
}

/// Moves order `id` from `from` to `to`, stamping `stamp` (a column) with `now`; false when
/// it was not in `from` (nothing changed).
pub async fn transition(
    db: &Db,
    id: i64,
    from: &str,
    to: &str,
    stamp: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let stamp = stamp.map(|c| format!(", {c} = ?")).unwrap_or_default();
    let mut q = db
        .query(format!(
            "UPDATE orders SET status = ?, updated_at = ?{stamp} WHERE id = ? AND status = ?"
        ))
        .bind(to)
        .bind(now.timestamp());
    if !stamp.is_empty() {
        q = q.bind(now.timestamp());
    }
    Ok(q.bind(id).bind(from).execute(db).await? == 1)
}

/// A payment that could not be applied to its order as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Review {
    /// The event.
    pub event_id: String,
    /// Its type.
    pub event_type: String,
    /// The order.
    pub order_id: i64,
    /// The amount paid.
    pub amount_cents: i64,
    /// Why it needs a person.
    pub reason: String,
    /// When it was recorded (unix seconds).
    pub created_at: i64,
}

/// Records `review` and its `PaymentNeedsReview` outbox event in one transaction; false when
/// the event was reviewed before (nothing written twice).
pub async fn review(db: &Db, r: &Review) -> Result<bool> {
    let mut tx = db.begin().await?;
    let insert = tx.backend().insert_ignore(
        "payment_reviews (event_id, event_type, order_id, amount_cents, reason, created_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
        "event_id",
    );
    let n = tx
        .query(insert)
        .bind(r.event_id.as_str())
        .bind(r.event_type.as_str())
        .bind(r.order_id)
        .bind(r.amount_cents)
        .bind(r.reason.as_str())
        .bind(r.created_at)
        .execute(&mut tx)
        .await?;
    if n == 0 {
        // Reviewed before: the transaction rolls back as it drops, having changed nothing.
        return Ok(false);
    }
    let now = DateTime::from_timestamp(r.created_at, 0).unwrap_or_default();
    let event = NewMessage {
        aggregate_type: "order",
        aggregate_id: r.order_id.to_string(),
        event_type: "PaymentNeedsReview",
        payload: json!({
            "event_id": r.event_id,
            "event_type": r.event_type,
            "order_id": r.order_id,
            "amount_cents": r.amount_cents,
            "reason": r.reason,
        }),
    };
    outbox::insert_tx(&mut tx, &event, now).await?;
    tx.commit().await?;
    Ok(true)
}

/// Every review, newest first.
pub async fn reviews(db: &Db) -> Result<Vec<Review>> {
    db.query(
        "SELECT event_id, event_type, order_id, amount_cents, reason, created_at \
         FROM payment_reviews ORDER BY created_at DESC, id DESC",
    )
    .fetch_as(db, |r: &Row| {
        Ok(Review {
            event_id: r.try_get(0)?,
            event_type: r.try_get(1)?,
            order_id: r.try_get(2)?,
            amount_cents: r.try_get(3)?,
            reason: r.try_get(4)?,
            created_at: r.try_get(5)?,
        })
    })
    .await
}
