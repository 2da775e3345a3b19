//! Orders: finding stale pending ones and releasing one, atomically with its stock and its
//! `OrderCancelled` outbox row.
//!
//! The release is guarded by its own `UPDATE … WHERE status = 'pending'`: of two runs racing
//! for one order, the second waits on the row lock and then updates nothing, so it never
//! restores the stock a second time.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::Row;

use super::outbox::{self, NewMessage};
use super::{Backend, Db, Result};
use crate::{on_pool, on_tx};

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
    let q = db
        .sql(&format!(
            "SELECT id, tenant_id, customer_email, total_cents, created_at FROM orders \
             WHERE status = 'pending' AND created_at < ? AND (created_at > ? OR (created_at = ? AND id > ?)){scope} \
             ORDER BY created_at, id LIMIT ?"
        ))
        .into_owned();
    let (after_created, after_id) = after.unwrap_or((i64::MIN, i64::MIN));
    let rows = on_pool!(db, p => {
        let mut query = sqlx::query(&q)
            .bind(cutoff.timestamp())
            .bind(after_created)
            .bind(after_created)
            .bind(after_id);
        if let Some(t) = tenant {
            query = query.bind(t);
        }
        let mut out = Vec::new();
        for r in query.bind(limit).fetch_all(p).await? {
            out.push(StaleOrder {
                id: r.try_get(0)?,
                tenant_id: r.try_get(1)?,
                customer_email: r.try_get(2)?,
                total_cents: r.try_get(3)?,
                created_at: r.try_get(4)?,
            });
        }
        out
    });
    Ok(rows)
}

/// How many pending orders were created before `cutoff` (of one tenant if given).
pub async fn count_stale(db: &Db, cutoff: DateTime<Utc>, tenant: Option<i64>) -> Result<u64> {
    let scope = if tenant.is_some() {
        " AND tenant_id = ?"
    } else {
        ""
    };
    let q = db
        .sql(&format!(
            "SELECT COUNT(*) FROM orders WHERE status = 'pending' AND created_at < ?{scope}"
        ))
        .into_owned();
    let n: i64 = on_pool!(db, p => {
        let mut query = sqlx::query_scalar(&q).bind(cutoff.timestamp());
        if let Some(t) = tenant {
            query = query.bind(t);
        }
        query.fetch_one(p).await?
    });
    Ok(n as u64)
}

/// The whole release as one statement on PostgreSQL: one round trip instead of six, and a
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
    if let Db::Postgres(p) = db {
        let released: i64 = sqlx::query_scalar(RELEASE_POSTGRES)
            .bind(now.timestamp())
            .bind(order.id)
            .fetch_one(p)
            .await?;
        return Ok(released == 1);
    }
    let mut tx = db.begin().await?;
    let cancel = tx.sql(
        "UPDATE orders SET status = 'cancelled', cancelled_at = ?, updated_at = ? WHERE id = ? AND status = 'pending'",
    ).into_owned();
    // SUM is NUMERIC on PostgreSQL and DECIMAL on MySQL: cast it back to an integer.
    let int = if tx.backend() == Backend::MySql {
        "SIGNED"
    } else {
        "BIGINT"
    };
    let items = tx
        .sql(&format!(
            "SELECT product_id, CAST(SUM(quantity) AS {int}) FROM order_items WHERE order_id = ? \
             GROUP BY product_id ORDER BY product_id"
        ))
        .into_owned();
    let restock = tx
        .sql("UPDATE products SET stock_quantity = stock_quantity + ? WHERE id = ?")
        .into_owned();
    let restored: Vec<(i64, i64)> = on_tx!(&mut tx, t => {
        let n = sqlx::query(&cancel)
            .bind(now.timestamp())
            .bind(now.timestamp())
            .bind(order.id)
            .execute(&mut **t)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        let mut restored = Vec::new();
        // Product ids ascending: two releases touching the same products lock them in the
        // same order, so they cannot deadlock.
        for r in sqlx::query(&items).bind(order.id).fetch_all(&mut **t).await? {
            let product: i64 = r.try_get(0)?;
            let quantity: i64 = r.try_get(1)?;
            sqlx::query(&restock).bind(quantity).bind(product).execute(&mut **t).await?;
            restored.push((product, quantity));
        }
        restored
    });
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
    let q = db.sql("SELECT status FROM orders WHERE id = ?");
    let s: Option<String> =
        on_pool!(db, p => sqlx::query_scalar(&q).bind(order).fetch_optional(p).await?);
    Ok(s)
}
