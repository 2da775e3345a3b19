-- Jobs finished per queue and minute, written by the workers with their heartbeat (each adds
-- its own counts), so the dashboard and /metrics show processed and failed per minute for
-- the whole fleet, whichever process serves them. minute is unix seconds / 60 on conecta's
-- clock. model:prune keeps a week.
CREATE TABLE queue_minutes (
    minute BIGINT NOT NULL,
    queue VARCHAR(191) NOT NULL,
    processed BIGINT NOT NULL DEFAULT 0,
    failed BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, queue)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
