//! Tenants, their plans' limits, and the limit violations `tenants:audit-limits` records.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::{Backend, Db, Result};
use crate::on_pool;

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tenant {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// `pending`, `approved`, `suspended`, …
    pub status: String,
    /// Its IANA time zone.
    pub timezone: String,
}

/// One tenant.
pub async fn find(db: &Db, id: i64) -> Result<Option<Tenant>> {
    let q = db.sql("SELECT id, name, status, timezone FROM tenants WHERE id = ?");
    let t = on_pool!(db, p => match sqlx::query(&q).bind(id).fetch_optional(p).await? {
        Some(r) => Some(Tenant {
            id: r.try_get(0)?,
            name: r.try_get(1)?,
            status: r.try_get(2)?,
            timezone: r.try_get(3)?,
        }),
        None => None,
    });
    Ok(t)
}

/// Up to `limit` ids of approved tenants above `after`, in id order.
pub async fn approved_after(db: &Db, after: i64, limit: i64) -> Result<Vec<i64>> {
    let q =
        db.sql("SELECT id FROM tenants WHERE status = 'approved' AND id > ? ORDER BY id LIMIT ?");
    let ids: Vec<i64> =
        on_pool!(db, p => sqlx::query_scalar(&q).bind(after).bind(limit).fetch_all(p).await?);
    Ok(ids)
}

/// How many tenants are approved.
pub async fn count_approved(db: &Db) -> Result<u64> {
    let q = "SELECT COUNT(*) FROM tenants WHERE status = 'approved'";
    let n: i64 = on_pool!(db, p => sqlx::query_scalar(q).fetch_one(p).await?);
    Ok(n as u64)
}

/// How many tenants there are.
pub async fn count(db: &Db) -> Result<u64> {
    let n: i64 =
        on_pool!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM tenants").fetch_one(p).await?);
    Ok(n as u64)
}

/// One tenant's use of one limited resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// The tenant.
    pub tenant_id: i64,
    /// `products`, `staff` or `storage_mb`.
    pub resource: &'static str,
    /// How much it uses.
    pub used: i64,
    /// What its plan allows.
    pub limit: i64,
}

impl Usage {
    /// True when it uses more than its plan allows.
    pub fn exceeded(&self) -> bool {
        self.used > self.limit
    }
}

/// Usage of up to `limit` tenants with ids above `after` (only `tenant` if given), three
/// rows per tenant, and the last tenant id seen.
pub async fn usage_after(
    db: &Db,
    tenant: Option<i64>,
    after: i64,
    limit: i64,
) -> Result<(Vec<Usage>, Option<i64>)> {
    let scope = if tenant.is_some() {
        " AND t.id = ?"
    } else {
        ""
    };
    let q = db
        .sql(&format!(
            "SELECT t.id, (SELECT COUNT(*) FROM products pr WHERE pr.tenant_id = t.id), t.staff_count, t.storage_mb, \
             p.max_products, p.max_staff, p.max_storage_mb \
             FROM tenants t JOIN plans p ON p.id = t.plan_id WHERE t.id > ?{scope} ORDER BY t.id LIMIT ?"
        ))
        .into_owned();
    let (out, last) = on_pool!(db, p => {
        let mut query = sqlx::query(&q).bind(after);
        if let Some(t) = tenant {
            query = query.bind(t);
        }
        let mut out = Vec::new();
        let mut last = None;
        for r in query.bind(limit).fetch_all(p).await? {
            let id: i64 = r.try_get(0)?;
            last = Some(id);
            for (i, resource) in ["products", "staff", "storage_mb"].into_iter().enumerate() {
                out.push(Usage {
                    tenant_id: id,
                    resource,
                    used: r.try_get(1 + i)?,
                    limit: r.try_get(4 + i)?,
                });
            }
        }
        (out, last)
    });
    Ok((out, last))
}

/// Records `u`: an open violation when exceeded (kept from when it was first seen), else
/// resolves the open one if any. Returns true when `u` is a violation.
pub async fn record_usage(db: &Db, u: &Usage, now: DateTime<Utc>) -> Result<bool> {
    let now = now.timestamp();
    if !u.exceeded() {
        let q = db.sql(
            "UPDATE tenant_limit_violations SET resolved_at = ? WHERE tenant_id = ? AND resource = ? AND resolved_at IS NULL",
        );
        on_pool!(db, p => sqlx::query(&q).bind(now).bind(u.tenant_id).bind(u.resource).execute(p).await?.rows_affected());
        return Ok(false);
    }
    let conflict = match db.backend() {
        // Assignments run left to right: first_seen_at reads resolved_at before it is cleared.
        Backend::MySql => {
            " ON DUPLICATE KEY UPDATE first_seen_at = IF(resolved_at IS NULL, first_seen_at, VALUES(first_seen_at)), \
             used = VALUES(used), limit_value = VALUES(limit_value), last_seen_at = VALUES(last_seen_at), resolved_at = NULL"
        }
        _ => {
            " ON CONFLICT (tenant_id, resource) DO UPDATE SET \
             first_seen_at = CASE WHEN tenant_limit_violations.resolved_at IS NULL THEN tenant_limit_violations.first_seen_at ELSE excluded.first_seen_at END, \
             used = excluded.used, limit_value = excluded.limit_value, last_seen_at = excluded.last_seen_at, resolved_at = NULL"
        }
    };
    let q = db
        .sql(&format!(
            "INSERT INTO tenant_limit_violations (tenant_id, resource, used, limit_value, first_seen_at, last_seen_at, resolved_at) \
             VALUES (?, ?, ?, ?, ?, ?, NULL){conflict}"
        ))
        .into_owned();
    on_pool!(db, p => sqlx::query(&q)
        .bind(u.tenant_id)
        .bind(u.resource)
        .bind(u.used)
        .bind(u.limit)
        .bind(now)
        .bind(now)
        .execute(p)
        .await?
        .rows_affected());
    Ok(true)
}

/// A recorded violation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The tenant.
    pub tenant_id: i64,
    /// What it exceeds.
    pub resource: String,
    /// How much it used when last audited.
    pub used: i64,
    /// Its plan's limit.
    pub limit: i64,
    /// When the violation was first seen.
    pub first_seen_at: DateTime<Utc>,
    /// When it was last seen.
    pub last_seen_at: DateTime<Utc>,
    /// When usage came back under the limit.
    pub resolved_at: Option<DateTime<Utc>>,
}

/// Violations, open ones only unless `all`, by tenant.
pub async fn violations(db: &Db, all: bool) -> Result<Vec<Violation>> {
    let filter = if all { "" } else { "WHERE resolved_at IS NULL" };
    let q = format!(
        "SELECT tenant_id, resource, used, limit_value, first_seen_at, last_seen_at, resolved_at \
         FROM tenant_limit_violations {filter} ORDER BY tenant_id, resource"
    );
    let ts = |t: i64| DateTime::from_timestamp(t, 0).unwrap_or_default();
    let rows = on_pool!(db, p => {
        let mut out = Vec::new();
        for r in sqlx::query(&q).fetch_all(p).await? {
            out.push(Violation {
                tenant_id: r.try_get(0)?,
                resource: r.try_get(1)?,
                used: r.try_get(2)?,
                limit: r.try_get(3)?,
                first_seen_at: ts(r.try_get(4)?),
                last_seen_at: ts(r.try_get(5)?),
                resolved_at: r.try_get::<Option<i64>, _>(6)?.map(ts),
            });
        }
        out
    });
    Ok(rows)
}
