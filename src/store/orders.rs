//! Orders: finding stale pending ones and releasing one, atomically with its stock and its
//! `OrderCancelled` outbox row.
//!
//! The release is guarded by its own `UPDATE … WHERE status = 'pending'`: of two runs racing
//! for one order, the second waits on the row lock and then updates nothing, so it never
//! restores the stock a second time.

use super::outbox::{self, NewMessage};
use super::{Backend, Db, Result};
use chrono::{DateTime, Utc};
use serde_json::json;

/// A pending order found stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleOrder {
    /// Its id.
    pub id: i64,
    /// Its tenant.
    pub tenant_id: i64,
    /// Who placed it.
    pub customer_email: String,
    /// Its total.
    pub total_cents: i64,
    /// When it was placed (unix seconds): with `id`, the key pages are read in.
    pub created_at: i64,
}

/// Up to `limit` pending orders created before `cutoff`, of one tenant if given, in
/// `(created_at, id)` order after the key `after` (the last order of the previous page).
/// Paging follows the pending-orders index, so a page never rescans orders already released.
pub async fn stale(
    db: &Db,
    cutoff: DateTime<Utc>,
    tenant: Option<i64>,
    after: Option<(i64, i64)>,
    limit: i64,
) -> Result<Vec<StaleOrder>> {
    let scope = if tenant.is_some() {
        " AND tenant_id = ?"
    } else {
        ""
    };
    let (after_created, after_id) = after.unwrap_or((i64::MIN, i64::MIN));
    let mut query = db
        .query(format!(
            "SELECT id, tenant_id, customer_email, total_cents, created_at FROM orders \
             WHERE status = 'pending' AND created_at < ? AND (created_at > ? OR (created_at = ? AND id > ?)){scope} \
             ORDER BY created_at, id LIMIT ?"
        ))
        .bind(cutoff.timestamp())
        .bind(after_created)
        .bind(after_created)
        .bind(after_id);
    if let Some(t) = tenant {
        query = query.bind(t);
    }
    let mut rows = Vec::new();
    for r in query.bind(limit).fetch_all(db).await? {
        rows.push(StaleOrder {
            id: r.try_get(0)?,
            tenant_id: r.try_get(1)?,
            customer_email: r.try_get(2)?,
            total_cents: r.try_get(3)?,
            created_at: r.try_get(4)?,
        });
    }
    Ok(rows)
}

/// How many pending orders were created before `cutoff` (of one tenant if given).
pub async fn count_stale(db: &Db, cutoff: DateTime<Utc>, tenant: Option<i64>) -> Result<u64> {
    let scope = if tenant.is_some() {
        " AND tenant_id = ?"
    } else {
        ""
    };
    let mut query = db
        .query(format!(
            "SELECT COUNT(*) FROM orders WHERE status = 'pending' AND created_at < ?{scope}"
        ))
        .bind(cutoff.timestamp());
    if let Some(t) = tenant {
        query = query.bind(t);
    }
    let n: i64 = query.scalar(db).await?;
    Ok(n as u64)
}

/// The whole release as one statement on PostgreSQL (its one statement of its own, see
/// `dialect.rs`): one round trip instead of six, and a
/// single statement is its own transaction. Data-modifying CTEs all run to completion; when the
/// guarded update finds the order no longer pending, every later step sees no rows.
const RELEASE_POSTGRES: &str = "\
WITH o AS (
    UPDATE orders SET status = 'cancelled', cancelled_at = $1, updated_at = $1
    WHERE id = $2 AND status = 'pending'
    RETURNING id, tenant_id, customer_email, total_cents
), i AS (
    SELECT product_id, CAST(SUM(quantity) AS BIGINT) AS quantity FROM order_items
    WHERE order_id IN (SELECT id FROM o) GROUP BY product_id
), p AS (
    UPDATE products SET stock_quantity = products.stock_quantity + i.quantity
    FROM i WHERE products.id = i.product_id
    RETURNING products.id
), m AS (
    INSERT INTO outbox_messages (aggregate_type, aggregate_id, event_type, payload, created_at, available_at, attempts)
    SELECT 'order', CAST(o.id AS TEXT), 'OrderCancelled',
        CAST(json_build_object(
            'order_id', o.id, 'tenant_id', o.tenant_id, 'customer_email', o.customer_email,
            'total_cents', o.total_cents, 'reason', 'stale',
            'restored', COALESCE((SELECT json_agg(json_build_object('product_id', i.product_id, 'quantity', i.quantity) ORDER BY i.product_id) FROM i), CAST('[]' AS json))
        ) AS TEXT), $1, $1, 0
    FROM o
    RETURNING id
)
SELECT COUNT(*) FROM m";

/// Cancels `order` if it is still pending, restores each item's stock and writes its
/// `OrderCancelled` outbox row, in one transaction. Returns false when the order was no
/// longer pending (another run released it, or it was paid meanwhile): nothing changed.
pub async fn release(db: &Db, order: &StaleOrder, now: DateTime<Utc>) -> Result<bool> {
    if db.backend() == Backend::Postgres {
        let released: i64 = db
            .query(RELEASE_POSTGRES)
            .bind(now.timestamp())
            .bind(order.id)
            .scalar(db)
            .await?;
        return Ok(released == 1);
    }
    let mut tx = db.begin().await?;
    let cancelled = tx
        .query("UPDATE orders SET status = 'cancelled', cancelled_at = ?, updated_at = ? WHERE id = ? AND status = 'pending'")
        .bind(now.timestamp())
        .bind(now.timestamp())
        .bind(order.id)
        .execute(&mut tx)
        .await?;
    if cancelled == 0 {
        // No longer pending: the transaction rolls back as it drops, having changed nothing.
        return Ok(false);
    }
    let sum = tx.backend().cast_int("SUM(quantity)");
    // Product ids ascending: two releases touching the same products lock them in the same
    // order, so they cannot deadlock.
    let items = tx
        .query(format!(
            "SELECT product_id, {sum} FROM order_items WHERE order_id = ? \
             GROUP BY product_id ORDER BY product_id"
        ))
        .bind(order.id)
        .fetch_all(&mut tx)
        .await?;
    let mut restored: Vec<(i64, i64)> = Vec::with_capacity(items.len());
    for r in items {
        let (product, quantity): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
        tx.query("UPDATE products SET stock_quantity = stock_quantity + ? WHERE id = ?")
            .bind(quantity)
            .bind(product)
            .execute(&mut tx)
            .await?;
        restored.push((product, quantity));
    }
    let event = NewMessage {
        aggregate_type: "order",
        aggregate_id: order.id.to_string(),
        event_type: "OrderCancelled",
        payload: json!({
            "order_id": order.id,
            "tenant_id": order.tenant_id,
            "customer_email": order.customer_email,
            "total_cents": order.total_cents,
            "reason": "stale",
            "restored": restored.iter().map(|(p, q)| json!({"product_id": p, "quantity": q})).collect::<Vec<_>>(),
        }),
    };
    outbox::insert_tx(&mut tx, &event, now).await?;
    tx.commit().await?;
    Ok(true)
}

/// An order's status.
pub async fn status(db: &Db, order: i64) -> Result<Option<String>> {
    db.query("SELECT status FROM orders WHERE id = ?")
        .bind(order)
        .scalar_optional(db)
        .await
}
