//! Interactions and `tenant_daily_analytics`: one row per tenant and local date, written by
//! an idempotent upsert, so running `SyncTenantAnalytics` again for a day rewrites the same
//! figures instead of adding to them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::{Backend, Db, Result};
use crate::on_pool;

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
    let q = db.sql(
        "INSERT INTO interactions (tenant_id, visitor, kind, occurred_at) VALUES (?, ?, ?, ?)",
    );
    on_pool!(db, p => sqlx::query(&q)
        .bind(tenant)
        .bind(visitor)
        .bind(kind)
        .bind(at.timestamp())
        .execute(p)
        .await?
        .rows_affected());
    Ok(())
}

fn int(backend: Backend) -> &'static str {
    if backend == Backend::MySql {
        "SIGNED"
    } else {
        "BIGINT"
    }
}

/// Aggregates `tenant`'s interactions and orders in `[from, to)`.
pub async fn figures(
    db: &Db,
    tenant: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Figures> {
    let int = int(db.backend());
    let kinds = db
        .sql(
            "SELECT kind, COUNT(*) FROM interactions WHERE tenant_id = ? AND occurred_at >= ? AND occurred_at < ? GROUP BY kind",
        )
        .into_owned();
    let visitors = db.sql(
        "SELECT COUNT(DISTINCT visitor) FROM interactions WHERE tenant_id = ? AND occurred_at >= ? AND occurred_at < ?",
    ).into_owned();
    let orders = db
        .sql(&format!(
            "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN status = 'paid' THEN total_cents ELSE 0 END), 0) AS {int}) \
             FROM orders WHERE tenant_id = ? AND created_at >= ? AND created_at < ? AND status <> 'cancelled'"
        ))
        .into_owned();
    let (from, to) = (from.timestamp(), to.timestamp());
    let f = on_pool!(db, p => {
        let mut f = Figures::default();
        for r in sqlx::query(&kinds).bind(tenant).bind(from).bind(to).fetch_all(p).await? {
            let n: i64 = r.try_get(1)?;
            f.interactions += n;
            f.interactions_by_kind.insert(r.try_get(0)?, n);
        }
        f.visitors = sqlx::query_scalar(&visitors).bind(tenant).bind(from).bind(to).fetch_one(p).await?;
        let r = sqlx::query(&orders).bind(tenant).bind(from).bind(to).fetch_one(p).await?;
        f.orders = r.try_get(0)?;
        f.revenue_cents = r.try_get(1)?;
        f
    });
    Ok(f)
}

/// Writes `tenant`'s row for `date`, replacing any earlier figures.
pub async fn upsert(
    db: &Db,
    tenant: i64,
    date: &str,
    f: &Figures,
    now: DateTime<Utc>,
) -> Result<()> {
    let conflict = match db.backend() {
        Backend::MySql => {
            " ON DUPLICATE KEY UPDATE visitors = VALUES(visitors), interactions = VALUES(interactions), \
             interactions_by_kind = VALUES(interactions_by_kind), orders = VALUES(orders), \
             revenue_cents = VALUES(revenue_cents), updated_at = VALUES(updated_at)"
        }
        _ => {
            " ON CONFLICT (tenant_id, date) DO UPDATE SET visitors = excluded.visitors, \
             interactions = excluded.interactions, interactions_by_kind = excluded.interactions_by_kind, \
             orders = excluded.orders, revenue_cents = excluded.revenue_cents, updated_at = excluded.updated_at"
        }
    };
    let q = db
        .sql(&format!(
            "INSERT INTO tenant_daily_analytics (tenant_id, date, visitors, interactions, interactions_by_kind, orders, revenue_cents, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?){conflict}"
        ))
        .into_owned();
    let kinds = serde_json::to_string(&f.interactions_by_kind).unwrap_or_else(|_| "{}".into());
    on_pool!(db, p => sqlx::query(&q)
        .bind(tenant)
        .bind(date)
        .bind(f.visitors)
        .bind(f.interactions)
        .bind(&kinds)
        .bind(f.orders)
        .bind(f.revenue_cents)
        .bind(now.timestamp())
        .execute(p)
        .await?
        .rows_affected());
    Ok(())
}

/// The stored figures of `tenant` for `date`.
pub async fn find(db: &Db, tenant: i64, date: &str) -> Result<Option<Figures>> {
    let q = db.sql(
        "SELECT visitors, interactions, interactions_by_kind, orders, revenue_cents FROM tenant_daily_analytics \
         WHERE tenant_id = ? AND date = ?",
    );
    let f = on_pool!(db, p => match sqlx::query(&q).bind(tenant).bind(date).fetch_optional(p).await? {
        Some(r) => Some(Figures {
            visitors: r.try_get(0)?,
            interactions: r.try_get(1)?,
            interactions_by_kind: serde_json::from_str(&r.try_get::<String, _>(2)?).unwrap_or_default(),
            orders: r.try_get(3)?,
            revenue_cents: r.try_get(4)?,
        }),
        None => None,
    });
    Ok(f)
}

/// How many tenants have a row for `date`.
pub async fn rows_for(db: &Db, date: &str) -> Result<i64> {
    let q = db.sql("SELECT COUNT(*) FROM tenant_daily_analytics WHERE date = ?");
    let n: i64 = on_pool!(db, p => sqlx::query_scalar(&q).bind(date).fetch_one(p).await?);
    Ok(n)
}
