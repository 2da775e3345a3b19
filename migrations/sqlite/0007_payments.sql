-- Payment webhooks: each verified event stored once (event_id unique, raw body kept), the
-- payments that could not be applied silently, and when an order was paid or refunded.
ALTER TABLE orders ADD COLUMN paid_at INTEGER NULL;
ALTER TABLE orders ADD COLUMN refunded_at INTEGER NULL;

CREATE TABLE payment_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    body TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    processed_at INTEGER NULL
);

CREATE TABLE payment_reviews (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    order_id INTEGER NOT NULL,
    amount_cents INTEGER NOT NULL,
    reason TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
