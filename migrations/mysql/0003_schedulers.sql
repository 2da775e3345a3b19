-- Live scheduler processes: who they are, which schedule they run (by hash), and their last
-- heartbeat, so `schedule health` can list them and warn when two disagree on the schedule.
-- Times are unix seconds from conecta's clock.
CREATE TABLE schedulers (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    host VARCHAR(255) NOT NULL,
    pid BIGINT NOT NULL,
    schedule_hash VARCHAR(255) NOT NULL,
    started_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    status VARCHAR(255) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
