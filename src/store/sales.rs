//! What the sales export and the monthly report read: a tenant's orders with their items,
//! streamed row by row, and a month's totals from `tenant_daily_analytics` and the orders.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{Db, Result, Row, StoreError};

/// One line of the export: an order item with its order (an order without items is one line
/// with no item).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The order.
    pub order_id: i64,
    /// When it was placed (unix seconds).
    pub created_at: i64,
    /// Its status.
    pub status: String,
    /// Who placed it.
    pub customer_email: String,
    /// Its total, in cents.
    pub total_cents: i64,
    /// The item's product, if the order has items.
    pub product_id: Option<i64>,
    /// The product's name, if it still exists.
    pub product_name: Option<String>,
    /// How many.
    pub quantity: Option<i64>,
    /// The unit price, in cents.
    pub price_cents: Option<i64>,
}

fn line(r: &Row) -> Result<Line> {
    Ok(Line {
        order_id: r.try_get(0)?,
        created_at: r.try_get(1)?,
        status: r.try_get(2)?,
        customer_email: r.try_get(3)?,
        total_cents: r.try_get(4)?,
        product_id: r.try_get(5)?,
        product_name: r.try_get(6)?,
        quantity: r.try_get(7)?,
        price_cents: r.try_get(8)?,
    })
}

/// Hands every line of `tenant`'s orders placed in `[from, to)` to `each`, in order of
/// placement, one at a time: memory does not grow with the number of orders.
pub async fn for_each_line<E: From<StoreError>>(
    db: &Db,
    tenant: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    mut each: impl FnMut(Line) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    db.query(
        "SELECT o.id, o.created_at, o.status, o.customer_email, o.total_cents, \
                i.product_id, p.name, i.quantity, i.price_cents \
         FROM orders o \
         LEFT JOIN order_items i ON i.order_id = o.id \
         LEFT JOIN products p ON p.id = i.product_id \
         WHERE o.tenant_id = ? AND o.created_at >= ? AND o.created_at < ? \
         ORDER BY o.created_at, o.id, i.id",
    )
    .bind(tenant)
    .bind(from.timestamp())
    .bind(to.timestamp())
    .for_each(db, |r| each(line(&r)?))
    .await
}

/// One day of the monthly report, from `tenant_daily_analytics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Day {
    /// The local date, `YYYY-MM-DD`.
    pub date: String,
    /// Distinct visitors.
    pub visitors: i64,
    /// Interactions.
    pub interactions: i64,
    /// Orders.
    pub orders: i64,
    /// Paid revenue, in cents.
    pub revenue_cents: i64,
}

/// A month of one tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Month {
    /// Orders placed in the month and not cancelled (from the orders).
    pub orders: i64,
    /// Paid revenue of the month's orders, in cents (from the orders).
    pub paid_revenue_cents: i64,
    /// Visitors, summed over the days (from the analytics rows).
    pub visitors: i64,
    /// Interactions per kind, summed over the days.
    pub interactions_by_kind: BTreeMap<String, i64>,
    /// The analytics rows of the month, by date.
    pub days: Vec<Day>,
}

/// `tenant`'s month: the analytics rows with dates in `[first, last]` (`YYYY-MM-DD`) and
/// the orders placed in `[from, to)`.
pub async fn month(
    db: &Db,
    tenant: i64,
    (first, last): (&str, &str),
    (from, to): (DateTime<Utc>, DateTime<Utc>),
) -> Result<Month> {
    let mut m = Month::default();
    let rows = db
        .query(
            "SELECT date, visitors, interactions, interactions_by_kind, orders, revenue_cents \
             FROM tenant_daily_analytics WHERE tenant_id = ? AND date >= ? AND date <= ? ORDER BY date",
        )
        .bind(tenant)
        .bind(first)
        .bind(last)
        .fetch_all(db)
        .await?;
    for r in rows {
        let date: String = r.try_get(0)?;
        let kinds: String = r.try_get(3)?;
        let kinds: BTreeMap<String, i64> = serde_json::from_str(&kinds).map_err(|e| {
            StoreError::Corrupt(format!(
                "tenant {tenant}, {date}: interactions_by_kind is not a JSON object of counts: {e}"
            ))
        })?;
        for (k, n) in kinds {
            *m.interactions_by_kind.entry(k).or_default() += n;
        }
        let day = Day {
            date,
            visitors: r.try_get(1)?,
            interactions: r.try_get(2)?,
            orders: r.try_get(4)?,
            revenue_cents: r.try_get(5)?,
        };
        m.visitors += day.visitors;
        m.days.push(day);
    }
    (m.orders, m.paid_revenue_cents) =
        super::analytics::order_totals(db, tenant, from.timestamp(), to.timestamp()).await?;
    Ok(m)
}
