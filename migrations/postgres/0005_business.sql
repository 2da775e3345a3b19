-- The business tables conecta's tasks work on (SPEC §6, §7). Times are unix seconds from
-- conecta's injected clock; money is in cents. Every index serves a query a task runs.
CREATE TABLE plans (
    id BIGSERIAL PRIMARY KEY,
    name VARCHAR(64) NOT NULL UNIQUE,
    max_products BIGINT NOT NULL,
    max_staff BIGINT NOT NULL,
    max_storage_mb BIGINT NOT NULL
);

CREATE TABLE tenants (
    id BIGSERIAL PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    status VARCHAR(32) NOT NULL,
    plan_id BIGINT NOT NULL,
    timezone VARCHAR(64) NOT NULL,
    email VARCHAR(255) NOT NULL,
    description TEXT NULL,
    tags TEXT NULL,
    staff_count BIGINT NOT NULL DEFAULT 0,
    storage_mb BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
-- analytics:sync walks approved tenants in id order.
CREATE INDEX tenants_status_id ON tenants (status, id);

CREATE TABLE products (
    id BIGSERIAL PRIMARY KEY,
    tenant_id BIGINT NOT NULL,
    name VARCHAR(255) NOT NULL,
    price_cents BIGINT NOT NULL,
    stock_quantity BIGINT NOT NULL,
    image_path VARCHAR(255) NULL,
    blurhash VARCHAR(64) NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX products_tenant ON products (tenant_id);

CREATE TABLE orders (
    id BIGSERIAL PRIMARY KEY,
    tenant_id BIGINT NOT NULL,
    status VARCHAR(32) NOT NULL,
    customer_email VARCHAR(255) NOT NULL,
    total_cents BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    cancelled_at BIGINT NULL
);
-- release-stale: pending orders by age, globally or per tenant.
CREATE INDEX orders_pending_created ON orders (created_at, id) WHERE status = 'pending';
-- SyncTenantAnalytics: one tenant's orders of one day; also release-stale --tenant.
CREATE INDEX orders_tenant_created ON orders (tenant_id, created_at);

CREATE TABLE order_items (
    id BIGSERIAL PRIMARY KEY,
    order_id BIGINT NOT NULL,
    product_id BIGINT NOT NULL,
    quantity BIGINT NOT NULL,
    price_cents BIGINT NOT NULL
);
CREATE INDEX order_items_order ON order_items (order_id);

CREATE TABLE appointments (
    id BIGSERIAL PRIMARY KEY,
    tenant_id BIGINT NOT NULL,
    customer_name VARCHAR(255) NOT NULL,
    customer_email VARCHAR(255) NOT NULL,
    starts_at BIGINT NOT NULL,
    reminder_sent_at BIGINT NULL,
    created_at BIGINT NOT NULL
);
-- send-reminders: unreminded appointments by start.
CREATE INDEX appointments_unreminded ON appointments (starts_at) WHERE reminder_sent_at IS NULL;

CREATE TABLE interactions (
    id BIGSERIAL PRIMARY KEY,
    tenant_id BIGINT NOT NULL,
    visitor VARCHAR(64) NOT NULL,
    kind VARCHAR(32) NOT NULL,
    occurred_at BIGINT NOT NULL
);
CREATE INDEX interactions_tenant_time ON interactions (tenant_id, occurred_at);

CREATE TABLE tenant_daily_analytics (
    tenant_id BIGINT NOT NULL,
    date VARCHAR(10) NOT NULL,
    visitors BIGINT NOT NULL,
    interactions BIGINT NOT NULL,
    interactions_by_kind TEXT NOT NULL,
    orders BIGINT NOT NULL,
    revenue_cents BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, date)
);

-- What tenants:audit-limits found: one row per tenant and resource over its plan's limit,
-- kept while the violation lasts and marked resolved when usage is back under the limit.
CREATE TABLE tenant_limit_violations (
    tenant_id BIGINT NOT NULL,
    resource VARCHAR(32) NOT NULL,
    used BIGINT NOT NULL,
    limit_value BIGINT NOT NULL,
    first_seen_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    resolved_at BIGINT NULL,
    PRIMARY KEY (tenant_id, resource)
);

-- The transactional outbox (SPEC §6).
CREATE TABLE outbox_messages (
    id BIGSERIAL PRIMARY KEY,
    aggregate_type VARCHAR(64) NOT NULL,
    aggregate_id VARCHAR(64) NOT NULL,
    event_type VARCHAR(64) NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    available_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT NULL,
    claimed_at BIGINT NULL,
    claimed_by VARCHAR(64) NULL,
    processed_at BIGINT NULL
) WITH (fillfactor = 70);
-- process: unprocessed rows in id order; prune: processed rows by age.
CREATE INDEX outbox_unprocessed ON outbox_messages (id) WHERE processed_at IS NULL;
CREATE INDEX outbox_processed_at ON outbox_messages (processed_at);
