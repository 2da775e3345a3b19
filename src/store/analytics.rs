//! Interactions and `tenant_daily_analytics`: one row per tenant and local date, written by
//! an idempotent upsert, so running `SyncTenantAnalytics` again for a day rewrites the same
//! figures instead of adding to them.

use std::collections::BTreeMap;

use super::{Db, Result, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// One tenant's figures for one day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Figures {
    /// Distinct visitors.
    pub visitors: i64,
    /// Interactions of every kind.
    pub interactions: i64,
    /// Interactions per kind.
    pub interactions_by_kind: BTreeMap<String, i64>,
    /// Orders placed and not cancelled.
    pub orders: i64,
    /// Total of the paid orders, in cents.
    pub revenue_cents: i64,
}

/// Stores one interaction.
pub async fn record_interaction(
    db: &Db,
    tenant: i64,
    visitor: &str,
    kind: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    db.query(
        "INSERT INTO interactions (tenant_id, visitor, kind, occurred_at) VALUES (?, ?, ?, ?)",
    )
    .bind(tenant)
    .bind(visitor)
    .bind(kind)
    .bind(at.timestamp())
    .execute(db)
    .await?;
    Ok(())
}

/// Aggregates `tenant`'s interactions and orders in `[from, to)`.
pub async fn figures(
    db: &Db,
    tenant: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Figures> {
    let (from, to) = (from.timestamp(), to.timestamp());
    let mut f = Figures::default();
    for r in db
        .query("SELECT kind, COUNT(*) FROM interactions WHERE tenant_id = ? AND occurred_at >= ? AND occurred_at < ? GROUP BY kind")
        .bind(tenant)
        .bind(from)
        .bind(to)
        .fetch_all(db)
        .await?
    {
        let n: i64 = r.try_get(1)?;
        f.interactions += n;
        f.interactions_by_kind.insert(r.try_get(0)?, n);
    }
    f.visitors = db
        .query("SELECT COUNT(DISTINCT visitor) FROM interactions WHERE tenant_id = ? AND occurred_at >= ? AND occurred_at < ?")
        .bind(tenant)
        .bind(from)
        .bind(to)
        .scalar(db)
        .await?;
    (f.orders, f.revenue_cents) = order_totals(db, tenant, from, to).await?;
    Ok(f)
}

/// `tenant`'s orders placed in `[from, to)` (unix seconds) and not cancelled, and the total of
/// the paid ones in cents.
pub async fn order_totals(db: &Db, tenant: i64, from: i64, to: i64) -> Result<(i64, i64)> {
    let revenue = db
        .backend()
        .cast_int("COALESCE(SUM(CASE WHEN status = 'paid' THEN total_cents ELSE 0 END), 0)");
    let r = db
        .query(format!(
            "SELECT COUNT(*), {revenue} FROM orders \
             WHERE tenant_id = ? AND created_at >= ? AND created_at < ? AND status <> 'cancelled'"
        ))
        .bind(tenant)
        .bind(from)
        .bind(to)
        .fetch_one(db)
        .await?;
    Ok((r.try_get(0)?, r.try_get(1)?))
}

/// Writes `tenant`'s row for `date`, replacing any earlier figures.
pub async fn upsert(
    db: &Db,
    tenant: i64,
    date: &str,
    f: &Figures,
    now: DateTime<Utc>,
) -> Result<()> {
    let upsert = db.backend().upsert(
        "tenant_daily_analytics",
        "(tenant_id, date, visitors, interactions, interactions_by_kind, orders, revenue_cents, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        "tenant_id, date",
        &[
            ("visitors", "NEW(visitors)"),
            ("interactions", "NEW(interactions)"),
            ("interactions_by_kind", "NEW(interactions_by_kind)"),
            ("orders", "NEW(orders)"),
            ("revenue_cents", "NEW(revenue_cents)"),
            ("updated_at", "NEW(updated_at)"),
        ],
    );
    db.query(upsert)
        .bind(tenant)
        .bind(date)
        .bind(f.visitors)
        .bind(f.interactions)
        .bind(serde_json::json!(f.interactions_by_kind).to_string())
        .bind(f.orders)
        .bind(f.revenue_cents)
        .bind(now.timestamp())
        .execute(db)
        .await?;
    Ok(())
}

/// The stored figures of `tenant` for `date`.
pub async fn find(db: &Db, tenant: i64, date: &str) -> Result<Option<Figures>> {
    let Some(r) = db
        .query(
            "SELECT visitors, interactions, interactions_by_kind, orders, revenue_cents FROM tenant_daily_analytics \
             WHERE tenant_id = ? AND date = ?",
        )
        .bind(tenant)
        .bind(date)
        .fetch_optional(db)
        .await?
    else {
        return Ok(None);
    };
    let kinds: String = r.try_get(2)?;
    let interactions_by_kind = serde_json::from_str(&kinds).map_err(|e| {
        StoreError::Corrupt(format!(
            "tenant {tenant}, {date}: interactions_by_kind is not a JSON object of counts: {e}"
        ))
    })?;
    Ok(Some(Figures {
        visitors: r.try_get(0)?,
        interactions: r.try_get(1)?,
        interactions_by_kind,
        orders: r.try_get(3)?,
        revenue_cents: r.try_get(4)?,
    }))
}

/// How many tenants have a row for `date`.
pub async fn rows_for(db: &Db, date: &str) -> Result<i64> {
    db.query("SELECT COUNT(*) FROM tenant_daily_analytics WHERE date = ?")
        .bind(date)
        .scalar(db)
        .await
}
