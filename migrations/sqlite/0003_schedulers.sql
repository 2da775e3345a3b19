-- Live scheduler processes: who they are, which schedule they run (by hash), and their last
-- heartbeat, so `schedule health` can list them and warn when two disagree on the schedule.
-- Times are unix seconds from conecta's clock.
CREATE TABLE schedulers (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    schedule_hash TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    status TEXT NOT NULL
);
