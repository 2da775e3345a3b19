//! Tenants, their plans' limits, and the limit violations `tenants:audit-limits` records.

use super::{Db, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;

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
    let row = db
        .query("SELECT id, name, status, timezone FROM tenants WHERE id = ?")
        .bind(id)
        .fetch_optional(db)
        .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(Tenant {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        status: r.try_get(2)?,
        timezone: r.try_get(3)?,
    }))
}

/// Up to `limit` ids of approved tenants above `after`, in id order.
pub async fn approved_after(db: &Db, after: i64, limit: i64) -> Result<Vec<i64>> {
    db.query("SELECT id FROM tenants WHERE status = 'approved' AND id > ? ORDER BY id LIMIT ?")
        .bind(after)
        .bind(limit)
        .scalars(db)
        .await
}

/// How many tenants are approved.
pub async fn count_approved(db: &Db) -> Result<u64> {
    let n: i64 = db
        .query("SELECT COUNT(*) FROM tenants WHERE status = 'approved'")
        .scalar(db)
        .await?;
    Ok(n as u64)
}

/// How many tenants there are.
pub async fn count(db: &Db) -> Result<u64> {
    let n: i64 = db.query("SELECT COUNT(*) FROM tenants").scalar(db).await?;
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
    let mut query = db
        .query(format!(
            "SELECT t.id, (SELECT COUNT(*) FROM products pr WHERE pr.tenant_id = t.id), t.staff_count, t.storage_mb, \
             p.max_products, p.max_staff, p.max_storage_mb \
             FROM tenants t JOIN plans p ON p.id = t.plan_id WHERE t.id > ?{scope} ORDER BY t.id LIMIT ?"
        ))
        .bind(after);
    if let Some(t) = tenant {
        query = query.bind(t);
    }
    let mut out = Vec::new();
    let mut last = None;
    for r in query.bind(limit).fetch_all(db).await? {
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
    Ok((out, last))
}

/// Records `u`: an open violation when exceeded (kept from when it was first seen), else
/// resolves the open one if any. Returns true when `u` is a violation.
pub async fn record_usage(db: &Db, u: &Usage, now: DateTime<Utc>) -> Result<bool> {
    let now = now.timestamp();
    if !u.exceeded() {
        db.query("UPDATE tenant_limit_violations SET resolved_at = ? WHERE tenant_id = ? AND resource = ? AND resolved_at IS NULL")
            .bind(now)
            .bind(u.tenant_id)
            .bind(u.resource)
            .execute(db)
            .await?;
        return Ok(false);
    }
    // Assignments run left to right on MySQL: first_seen_at reads resolved_at before it is
    // cleared.
    let upsert = db.backend().upsert(
        "tenant_limit_violations",
        "(tenant_id, resource, used, limit_value, first_seen_at, last_seen_at, resolved_at) \
         VALUES (?, ?, ?, ?, ?, ?, NULL)",
        "tenant_id, resource",
        &[
            (
                "first_seen_at",
                "CASE WHEN OLD(resolved_at) IS NULL THEN OLD(first_seen_at) ELSE NEW(first_seen_at) END",
            ),
            ("used", "NEW(used)"),
            ("limit_value", "NEW(limit_value)"),
            ("last_seen_at", "NEW(last_seen_at)"),
            ("resolved_at", "NULL"),
        ],
    );
    db.query(upsert)
        .bind(u.tenant_id)
        .bind(u.resource)
        .bind(u.used)
        .bind(u.limit)
        .bind(now)
        .bind(now)
        .execute(db)
        .await?;
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
    let ts = |t: i64| DateTime::from_timestamp(t, 0).unwrap_or_default();
    let mut rows = Vec::new();
    for r in db
        .query(format!(
            "SELECT tenant_id, resource, used, limit_value, first_seen_at, last_seen_at, resolved_at \
             FROM tenant_limit_violations {filter} ORDER BY tenant_id, resource"
        ))
        .fetch_all(db)
        .await?
    {
        rows.push(Violation {
            tenant_id: r.try_get(0)?,
            resource: r.try_get(1)?,
            used: r.try_get(2)?,
            limit: r.try_get(3)?,
            first_seen_at: ts(r.try_get(4)?),
            last_seen_at: ts(r.try_get(5)?),
            resolved_at: r.try_get::<Option<i64>>(6)?.map(ts),
        });
    }
    Ok(rows)
}

/// What a tenant profile is written from, and what it holds now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Profile {
    /// The tenant.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its owner's email.
    pub email: String,
    /// Its zone.
    pub timezone: String,
    /// The description, if written.
    pub description: Option<String>,
    /// Comma-separated tags, if written.
    pub tags: Option<String>,
    /// Who wrote them (`offline`, or the model's name).
    pub profile_source: Option<String>,
    /// When.
    pub profile_updated_at: Option<i64>,
    /// The names of its first products, for the prompt.
    pub products: Vec<String>,
}

/// Tenant `id`'s profile and up to ten of its product names.
pub async fn profile(db: &Db, id: i64) -> Result<Option<Profile>> {
    let Some(mut p) = db
        .query(
            "SELECT id, name, email, timezone, description, tags, profile_source, profile_updated_at \
             FROM tenants WHERE id = ?",
        )
        .bind(id)
        .fetch_optional_as(db, |r: &super::Row| {
            Ok(Profile {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                email: r.try_get(2)?,
                timezone: r.try_get(3)?,
                description: r.try_get(4)?,
                tags: r.try_get(5)?,
                profile_source: r.try_get(6)?,
                profile_updated_at: r.try_get(7)?,
                products: Vec::new(),
            })
        })
        .await?
    else {
        return Ok(None);
    };
    p.products = db
        .query("SELECT name FROM products WHERE tenant_id = ? ORDER BY id LIMIT 10")
        .bind(id)
        .scalars(db)
        .await?;
    Ok(Some(p))
}

/// Writes tenant `id`'s description and tags, saying who wrote them.
pub async fn set_profile(
    db: &Db,
    id: i64,
    description: &str,
    tags: &str,
    source: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let n = db
        .query(
            "UPDATE tenants SET description = ?, tags = ?, profile_source = ?, profile_updated_at = ? \
             WHERE id = ?",
        )
        .bind(description)
        .bind(tags)
        .bind(source)
        .bind(now.timestamp())
        .bind(id)
        .execute(db)
        .await?;
    Ok(n == 1)
}
