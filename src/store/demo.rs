//! `conecta demo seed`: a realistic synthetic data set, so a newcomer can watch `start` do
//! real work, and the benchmarks have data to chew on.
//!
//! Rows are written in multi-row inserts with explicit ids (taken above the current maximum),
//! so children can point at their parents without reading ids back; PostgreSQL's sequences
//! are moved past them afterwards. The data is a pure function of the seed and `now`.

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::{Db, Result, value_groups};

/// How much to make.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    /// Tenants (about 80% approved).
    pub tenants: u64,
    /// Products per tenant (on average).
    pub products: u64,
    /// Orders per tenant: pending (most older than 30 minutes), paid and cancelled.
    pub orders: u64,
    /// Appointments per tenant over the next three days.
    pub appointments: u64,
    /// Interactions per tenant over the last two days.
    pub interactions: u64,
    /// Of the orders, the share created within the last 30 minutes, in percent.
    pub fresh_percent: u64,
    /// Customers per tenant (about three in four consent to campaign mail), each tenant with
    /// one draft campaign.
    pub customers: u64,
    /// The random seed.
    pub seed: u64,
}

impl Default for SeedOptions {
    fn default() -> Self {
        Self {
            tenants: 25,
            products: 10,
            orders: 8,
            appointments: 5,
            interactions: 30,
            fresh_percent: 25,
            customers: 4,
            seed: 42,
        }
    }
}

/// What was made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SeedReport {
    /// Tenants.
    pub tenants: u64,
    /// Of them approved.
    pub approved: u64,
    /// Products.
    pub products: u64,
    /// Orders.
    pub orders: u64,
    /// Of them pending.
    pub pending_orders: u64,
    /// Order items.
    pub order_items: u64,
    /// Appointments.
    pub appointments: u64,
    /// Interactions.
    pub interactions: u64,
    /// Customers.
    pub customers: u64,
    /// Draft campaigns.
    pub campaigns: u64,
}

/// The plans: name, max products, max staff, max storage (MB).
pub const PLANS: [(&str, i64, i64, i64); 3] = [
    ("free", 10, 2, 500),
    ("pro", 100, 10, 5_000),
    ("business", 1_000, 50, 50_000),
];

const ZONES: [&str; 6] = [
    "America/Tegucigalpa",
    "America/New_York",
    "America/Mexico_City",
    "America/Bogota",
    "Europe/Madrid",
    "Asia/Tokyo",
];

const KINDS: [&str; 4] = ["view", "click", "add_to_cart", "share"];

/// One value of a row to insert.
pub use super::sql::Value as Cell;

/// A table the seed writes, with the columns its rows give, in order.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    /// The table.
    pub name: &'static str,
    /// Its columns, in the order of each row's cells.
    pub columns: &'static [&'static str],
}

/// `tenants`.
pub const TENANTS: Table = Table {
    name: "tenants",
    columns: &[
        "id",
        "name",
        "status",
        "plan_id",
        "timezone",
        "email",
        "staff_count",
        "storage_mb",
        "created_at",
    ],
};

/// `products`.
pub const PRODUCTS: Table = Table {
    name: "products",
    columns: &[
        "id",
        "tenant_id",
        "name",
        "price_cents",
        "stock_quantity",
        "image_path",
        "blurhash",
        "created_at",
    ],
};

/// `orders`.
pub const ORDERS: Table = Table {
    name: "orders",
    columns: &[
        "id",
        "tenant_id",
        "status",
        "customer_email",
        "total_cents",
        "created_at",
        "updated_at",
        "cancelled_at",
    ],
};

/// `order_items`.
pub const ORDER_ITEMS: Table = Table {
    name: "order_items",
    columns: &["id", "order_id", "product_id", "quantity", "price_cents"],
};

/// `appointments`.
pub const APPOINTMENTS: Table = Table {
    name: "appointments",
    columns: &[
        "id",
        "tenant_id",
        "customer_name",
        "customer_email",
        "starts_at",
        "reminder_sent_at",
        "created_at",
    ],
};

/// `interactions`.
pub const INTERACTIONS: Table = Table {
    name: "interactions",
    columns: &["id", "tenant_id", "visitor", "kind", "occurred_at"],
};

/// `customers`.
pub const CUSTOMERS: Table = Table {
    name: "customers",
    columns: &[
        "id",
        "tenant_id",
        "name",
        "email",
        "marketing_consent",
        "created_at",
    ],
};

/// `campaigns`.
pub const CAMPAIGNS: Table = Table {
    name: "campaigns",
    columns: &["id", "tenant_id", "subject", "body", "status", "created_at"],
};

/// `outbox_messages`.
pub const OUTBOX_MESSAGES: Table = Table {
    name: "outbox_messages",
    columns: &[
        "aggregate_type",
        "aggregate_id",
        "event_type",
        "payload",
        "created_at",
        "available_at",
        "attempts",
    ],
};

/// `plans`.
pub const PLANS_TABLE: Table = Table {
    name: "plans",
    columns: &["name", "max_products", "max_staff", "max_storage_mb"],
};

/// Inserts `rows` into `table` in multi-row statements of at most 500 rows.
pub async fn insert_rows(db: &Db, table: &Table, rows: &[Vec<Cell>]) -> Result<()> {
    let (columns, table) = (table.columns, table.name);
    for part in rows.chunks(500) {
        db.query(format!(
            "INSERT INTO {table} ({}) VALUES {}",
            columns.join(", "),
            value_groups(part.len(), columns.len())
        ))
        .bind_values(part.iter().flatten())
        .execute(db)
        .await?;
    }
    Ok(())
}

/// The largest id in `table`, 0 when empty.
pub async fn max_id(db: &Db, table: &str) -> Result<i64> {
    db.query(format!("SELECT COALESCE(MAX(id), 0) FROM {table}"))
        .scalar(db)
        .await
}

/// Moves `table`'s id sequence past its largest id where the database keeps one apart from
/// the table (PostgreSQL: explicit ids do not move it).
pub async fn sync_sequence(db: &Db, table: &str) -> Result<()> {
    if let Some(q) = db.backend().sync_sequence(table) {
        db.query(q).execute(db).await?;
    }
    Ok(())
}

/// Makes sure the three plans exist; returns their ids in [`PLANS`] order.
pub async fn ensure_plans(db: &Db) -> Result<Vec<i64>> {
    let mut ids = Vec::new();
    for (name, products, staff, storage) in PLANS {
        let find = || db.query("SELECT id FROM plans WHERE name = ?").bind(name);
        let existing: Option<i64> = find().scalar_optional(db).await?;
        let id = match existing {
            Some(id) => id,
            None => {
                insert_rows(
                    db,
                    &PLANS_TABLE,
                    &[vec![
                        Cell::Text(name.into()),
                        Cell::Int(products),
                        Cell::Int(staff),
                        Cell::Int(storage),
                    ]],
                )
                .await?;
                find().scalar(db).await?
            }
        };
        ids.push(id);
    }
    Ok(ids)
}

/// Fills the business tables as of `now`, calling `progress` with tenants done so far.
pub async fn seed(
    db: &Db,
    o: &SeedOptions,
    now: DateTime<Utc>,
    mut progress: impl FnMut(u64),
) -> Result<SeedReport> {
    let mut rng = StdRng::seed_from_u64(o.seed);
    let plans = ensure_plans(db).await?;
    let mut report = SeedReport::default();
    let t0 = now.timestamp();
    let first_tenant = max_id(db, "tenants").await? + 1;
    let mut next = [
        max_id(db, "tenants").await?,
        max_id(db, "products").await?,
        max_id(db, "orders").await?,
        max_id(db, "order_items").await?,
        max_id(db, "appointments").await?,
        max_id(db, "interactions").await?,
    ];
    // Tenants go in chunks of 500, each chunk with all its children.
    let mut done = 0;
    while done < o.tenants {
        let n = (o.tenants - done).min(500);
        let mut tenants = Vec::new();
        let mut products = Vec::new();
        let mut orders = Vec::new();
        let mut items = Vec::new();
        let mut appointments = Vec::new();
        let mut interactions = Vec::new();
        for _ in 0..n {
            next[0] += 1;
            let tenant = next[0];
            let status = match rng.gen_range(0..10) {
                0 => "pending",
                1 => "suspended",
                _ => "approved",
            };
            if status == "approved" {
                report.approved += 1;
            }
            let plan = rng.gen_range(0..plans.len());
            tenants.push(vec![
                Cell::Int(tenant),
                Cell::Text(format!("Tienda {tenant}")),
                Cell::Text(status.into()),
                Cell::Int(plans[plan]),
                Cell::Text(ZONES[rng.gen_range(0..ZONES.len())].into()),
                Cell::Text(format!("owner{tenant}@example.test")),
                Cell::Int(rng.gen_range(1..=PLANS[plan].2 + 3)),
                Cell::Int(rng.gen_range(10..=PLANS[plan].3 + 200)),
                Cell::Int(t0 - rng.gen_range(1..400) * 86_400),
            ]);
            let first_product = next[1] + 1;
            let product_count = if o.products == 0 {
                0
            } else {
                rng.gen_range(o.products / 2..=o.products + o.products / 2)
                    .max(1)
            };
            for _ in 0..product_count {
                next[1] += 1;
                products.push(vec![
                    Cell::Int(next[1]),
                    Cell::Int(tenant),
                    Cell::Text(format!("Producto {}", next[1])),
                    Cell::Int(rng.gen_range(100..50_000)),
                    Cell::Int(rng.gen_range(0..200)),
                    Cell::Text(format!("products/{}.jpg", next[1])),
                    Cell::Null,
                    Cell::Int(t0 - 86_400),
                ]);
            }
            for _ in 0..o.orders {
                next[2] += 1;
                let order = next[2];
                let status = match rng.gen_range(0..10) {
                    0..=5 => "pending",
                    6..=8 => "paid",
                    _ => "cancelled",
                };
                let age = if rng.gen_range(0..100) < o.fresh_percent {
                    rng.gen_range(0..30 * 60)
                } else {
                    rng.gen_range(31 * 60..6 * 3_600)
                };
                let mut total = 0;
                if product_count > 0 {
                    for _ in 0..rng.gen_range(1..=3) {
                        next[3] += 1;
                        let quantity = rng.gen_range(1..=3);
                        let price = rng.gen_range(100..20_000);
                        total += quantity * price;
                        items.push(vec![
                            Cell::Int(next[3]),
                            Cell::Int(order),
                            Cell::Int(first_product + rng.gen_range(0..product_count as i64)),
                            Cell::Int(quantity),
                            Cell::Int(price),
                        ]);
                    }
                }
                if status == "pending" {
                    report.pending_orders += 1;
                }
                orders.push(vec![
                    Cell::Int(order),
                    Cell::Int(tenant),
                    Cell::Text(status.into()),
                    Cell::Text(format!("cliente{order}@example.test")),
                    Cell::Int(total),
                    Cell::Int(t0 - age),
                    Cell::Int(t0 - age),
                    if status == "cancelled" {
                        Cell::Int(t0 - age / 2)
                    } else {
                        Cell::Null
                    },
                ]);
            }
            for _ in 0..o.appointments {
                next[4] += 1;
                let quarter = rng.gen_range(4..72 * 4);
                appointments.push(vec![
                    Cell::Int(next[4]),
                    Cell::Int(tenant),
                    Cell::Text(format!("Cliente {}", next[4])),
                    Cell::Text(format!("cita{}@example.test", next[4])),
                    Cell::Int((t0 / 900 + quarter) * 900),
                    Cell::Null,
                    Cell::Int(t0 - 86_400),
                ]);
            }
            for _ in 0..o.interactions {
                next[5] += 1;
                interactions.push(vec![
                    Cell::Int(next[5]),
                    Cell::Int(tenant),
                    Cell::Text(format!("v{}", rng.gen_range(1..=15))),
                    Cell::Text(KINDS[rng.gen_range(0..KINDS.len())].into()),
                    Cell::Int(t0 - rng.gen_range(0..48 * 3_600)),
                ]);
            }
        }
        report.tenants += tenants.len() as u64;
        report.products += products.len() as u64;
        report.orders += orders.len() as u64;
        report.order_items += items.len() as u64;
        report.appointments += appointments.len() as u64;
        report.interactions += interactions.len() as u64;
        insert_rows(db, &TENANTS, &tenants).await?;
        insert_rows(db, &PRODUCTS, &products).await?;
        insert_rows(db, &ORDERS, &orders).await?;
        insert_rows(db, &ORDER_ITEMS, &items).await?;
        insert_rows(db, &APPOINTMENTS, &appointments).await?;
        insert_rows(db, &INTERACTIONS, &interactions).await?;
        done += n;
        progress(done);
    }
    // Customers and campaigns draw from a random stream of their own, so adding them left
    // every other row of a given seed as it was.
    let mut rng = StdRng::seed_from_u64(o.seed ^ 0x00C0_FFEE);
    let (mut customer, mut campaign) = (
        max_id(db, "customers").await?,
        max_id(db, "campaigns").await?,
    );
    let tenants: Vec<i64> = (first_tenant..=next[0]).collect();
    for part in tenants.chunks(500) {
        let mut customers = Vec::new();
        let mut campaigns = Vec::new();
        for &tenant in part {
            for _ in 0..o.customers {
                customer += 1;
                customers.push(vec![
                    Cell::Int(customer),
                    Cell::Int(tenant),
                    Cell::Text(format!("Cliente {customer}")),
                    Cell::Text(format!("customer{customer}@example.test")),
                    Cell::Int(i64::from(rng.gen_range(0..4) != 0)),
                    Cell::Int(t0 - rng.gen_range(1..300) * 86_400),
                ]);
            }
            if o.customers > 0 {
                campaign += 1;
                campaigns.push(vec![
                    Cell::Int(campaign),
                    Cell::Int(tenant),
                    Cell::Text(format!("News from Tienda {tenant}")),
                    Cell::Text(
                        "Hola {{name}},\n\nthis month we have new products for you.\n\nUnsubscribe: {{unsubscribe_url}}\n"
                            .into(),
                    ),
                    Cell::Text("draft".into()),
                    Cell::Int(t0),
                ]);
            }
        }
        report.customers += customers.len() as u64;
        report.campaigns += campaigns.len() as u64;
        insert_rows(db, &CUSTOMERS, &customers).await?;
        insert_rows(db, &CAMPAIGNS, &campaigns).await?;
    }
    for table in [
        "tenants",
        "products",
        "orders",
        "order_items",
        "appointments",
        "interactions",
        "customers",
        "campaigns",
    ] {
        sync_sequence(db, table).await?;
    }
    Ok(report)
}

/// Sum of `stock_quantity` over every product (tests and the demo check stock restores).
pub async fn total_stock(db: &Db) -> Result<i64> {
    let sum = db.backend().cast_int("COALESCE(SUM(stock_quantity), 0)");
    db.query(format!("SELECT {sum} FROM products"))
        .scalar(db)
        .await
}

/// How many rows `table` has.
pub async fn row_count(db: &Db, table: &str) -> Result<i64> {
    db.query(format!("SELECT COUNT(*) FROM {table}"))
        .scalar(db)
        .await
}

/// Empties `tables` (for benchmarks that checked they were empty before).
pub async fn empty(db: &Db, tables: &[&str]) -> Result<()> {
    for table in tables {
        db.query(db.backend().truncate(table)).execute(db).await?;
    }
    Ok(())
}

/// Refreshes the planner statistics of `tables` after a bulk load (PostgreSQL; others no-op).
pub async fn analyze(db: &Db, tables: &[&str]) -> Result<()> {
    for table in tables {
        if let Some(q) = db.backend().analyze(table) {
            db.query(q).execute(db).await?;
        }
    }
    Ok(())
}
