-- The job catalog's tables: customers who may receive campaign mail, campaigns and the
-- deliveries that keep each recipient to one message, shared send-rate slots, and the
-- profile and BlurHash stamps the AI and image jobs leave.
CREATE TABLE customers (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    tenant_id BIGINT NOT NULL,
    name VARCHAR(255) NOT NULL,
    email VARCHAR(255) NOT NULL,
    marketing_consent BIGINT NOT NULL DEFAULT 0,
    unsubscribed_at BIGINT NULL,
    created_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
-- campaigns:send walks one tenant's customers in id order.
CREATE INDEX customers_tenant_id ON customers (tenant_id, id);

CREATE TABLE campaigns (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    tenant_id BIGINT NOT NULL,
    subject VARCHAR(255) NOT NULL,
    body TEXT NOT NULL,
    status VARCHAR(32) NOT NULL,
    rate VARCHAR(32) NULL,
    batch_id VARCHAR(64) NULL,
    recipients BIGINT NOT NULL DEFAULT 0,
    sent_count BIGINT NOT NULL DEFAULT 0,
    failed_count BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    started_at BIGINT NULL,
    finished_at BIGINT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per message a campaign sent: a retried or re-enqueued job finds it and sends nothing.
CREATE TABLE campaign_deliveries (
    campaign_id BIGINT NOT NULL,
    customer_id BIGINT NOT NULL,
    sent_at BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, customer_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Send-rate slots shared by every worker: the next free instant (µs since the epoch) per key.
CREATE TABLE rate_limits (
    name VARCHAR(191) NOT NULL PRIMARY KEY,
    next_at_us BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

ALTER TABLE tenants ADD COLUMN profile_source VARCHAR(64) NULL;
ALTER TABLE tenants ADD COLUMN profile_updated_at BIGINT NULL;
ALTER TABLE products ADD COLUMN blurhash_at BIGINT NULL;
