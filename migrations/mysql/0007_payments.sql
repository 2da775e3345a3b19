-- Payment webhooks: each verified event stored once (event_id unique, raw body kept), the
-- payments that could not be applied silently, and when an order was paid or refunded.
ALTER TABLE orders ADD COLUMN paid_at BIGINT NULL, ADD COLUMN refunded_at BIGINT NULL;

CREATE TABLE payment_events (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    event_id VARCHAR(255) NOT NULL UNIQUE,
    event_type VARCHAR(64) NOT NULL,
    body MEDIUMTEXT NOT NULL,
    received_at BIGINT NOT NULL,
    processed_at BIGINT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE payment_reviews (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    event_id VARCHAR(255) NOT NULL UNIQUE,
    event_type VARCHAR(64) NOT NULL,
    order_id BIGINT NOT NULL,
    amount_cents BIGINT NOT NULL,
    reason TEXT NOT NULL,
    created_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
