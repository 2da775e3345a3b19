-- The business tables conecta's tasks work on (SPEC §6, §7). Times are unix seconds from
-- conecta's injected clock; money is in cents. Every index serves a query a task runs.
CREATE TABLE plans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    max_products INTEGER NOT NULL,
    max_staff INTEGER NOT NULL,
    max_storage_mb INTEGER NOT NULL
);

CREATE TABLE tenants (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    plan_id INTEGER NOT NULL,
    timezone TEXT NOT NULL,
    email TEXT NOT NULL,
    description TEXT NULL,
    tags TEXT NULL,
    staff_count INTEGER NOT NULL DEFAULT 0,
    storage_mb INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
-- analytics:sync walks approved tenants in id order.
CREATE INDEX tenants_status_id ON tenants (status, id);

CREATE TABLE products (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    stock_quantity INTEGER NOT NULL,
    image_path TEXT NULL,
    blurhash TEXT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX products_tenant ON products (tenant_id);

CREATE TABLE orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    customer_email TEXT NOT NULL,
    total_cents INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    cancelled_at INTEGER NULL
);
-- release-stale: pending orders by age, globally or per tenant.
CREATE INDEX orders_pending_created ON orders (created_at, id) WHERE status = 'pending';
-- SyncTenantAnalytics: one tenant's orders of one day; also release-stale --tenant.
CREATE INDEX orders_tenant_created ON orders (tenant_id, created_at);

CREATE TABLE order_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id INTEGER NOT NULL,
    product_id INTEGER NOT NULL,
    quantity INTEGER NOT NULL,
    price_cents INTEGER NOT NULL
);
CREATE INDEX order_items_order ON order_items (order_id);

CREATE TABLE appointments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL,
    customer_name TEXT NOT NULL,
    customer_email TEXT NOT NULL,
    starts_at INTEGER NOT NULL,
    reminder_sent_at INTEGER NULL,
    created_at INTEGER NOT NULL
);
-- send-reminders: unreminded appointments by start.
CREATE INDEX appointments_unreminded ON appointments (starts_at) WHERE reminder_sent_at IS NULL;

CREATE TABLE interactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL,
    visitor TEXT NOT NULL,
    kind TEXT NOT NULL,
    occurred_at INTEGER NOT NULL
);
CREATE INDEX interactions_tenant_time ON interactions (tenant_id, occurred_at);

CREATE TABLE tenant_daily_analytics (
    tenant_id INTEGER NOT NULL,
    date TEXT NOT NULL,
    visitors INTEGER NOT NULL,
    interactions INTEGER NOT NULL,
    interactions_by_kind TEXT NOT NULL,
    orders INTEGER NOT NULL,
    revenue_cents INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, date)
);

-- What tenants:audit-limits found: one row per tenant and resource over its plan's limit,
-- kept while the violation lasts and marked resolved when usage is back under the limit.
CREATE TABLE tenant_limit_violations (
    tenant_id INTEGER NOT NULL,
    resource TEXT NOT NULL,
    used INTEGER NOT NULL,
    limit_value INTEGER NOT NULL,
    first_seen_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    resolved_at INTEGER NULL,
    PRIMARY KEY (tenant_id, resource)
);

-- The transactional outbox (SPEC §6).
CREATE TABLE outbox_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    aggregate_type TEXT NOT NULL,
    aggregate_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    available_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NULL,
    claimed_at INTEGER NULL,
    claimed_by TEXT NULL,
    processed_at INTEGER NULL
);
-- process: unprocessed rows in id order; prune: processed rows by age.
CREATE INDEX outbox_unprocessed ON outbox_messages (id) WHERE processed_at IS NULL;
CREATE INDEX outbox_processed_at ON outbox_messages (processed_at);
