-- The job catalog's tables: customers who may receive campaign mail, campaigns and the
-- deliveries that keep each recipient to one message, shared send-rate slots, and the
-- profile and BlurHash stamps the AI and image jobs leave.
CREATE TABLE customers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    marketing_consent INTEGER NOT NULL DEFAULT 0,
    unsubscribed_at INTEGER NULL,
    created_at INTEGER NOT NULL
);
-- campaigns:send walks one tenant's customers in id order.
CREATE INDEX customers_tenant_id ON customers (tenant_id, id);

CREATE TABLE campaigns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    rate TEXT NULL,
    batch_id TEXT NULL,
    recipients INTEGER NOT NULL DEFAULT 0,
    sent_count INTEGER NOT NULL DEFAULT 0,
    failed_count INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    started_at INTEGER NULL,
    finished_at INTEGER NULL
);

-- One row per message a campaign sent: a retried or re-enqueued job finds it and sends nothing.
CREATE TABLE campaign_deliveries (
    campaign_id INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    sent_at INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, customer_id)
);

-- Send-rate slots shared by every worker: the next free instant (µs since the epoch) per key.
CREATE TABLE rate_limits (
    name TEXT NOT NULL PRIMARY KEY,
    next_at_us INTEGER NOT NULL
);

ALTER TABLE tenants ADD COLUMN profile_source TEXT NULL;
ALTER TABLE tenants ADD COLUMN profile_updated_at INTEGER NULL;
ALTER TABLE products ADD COLUMN blurhash_at INTEGER NULL;
