-- The running-lock of an entry with overlap = "skip": held by one run, renewed while that run
-- is alive, taken over once expired, so a run whose process died frees its entry within one
-- lease period. expires_at is unix milliseconds from conecta's clock.
CREATE TABLE schedule_leases (
    entry VARCHAR(255) NOT NULL PRIMARY KEY,
    run_id BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
