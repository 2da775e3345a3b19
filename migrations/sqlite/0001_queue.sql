-- Queue runtime tables. Laravel's columns for jobs, failed_jobs and job_batches, so existing
-- monitoring queries keep working. Times are unix seconds from conecta's injected clock,
-- except failed_at, a UTC timestamp as in Laravel.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    reserved_at INTEGER NULL,
    available_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX jobs_queue_id ON jobs (queue, id);

CREATE TABLE failed_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL UNIQUE,
    connection TEXT NOT NULL,
    queue TEXT NOT NULL,
    payload TEXT NOT NULL,
    exception TEXT NOT NULL,
    failed_at TEXT NOT NULL
);
CREATE INDEX failed_jobs_failed_at ON failed_jobs (failed_at);

CREATE TABLE job_batches (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    total_jobs INTEGER NOT NULL,
    pending_jobs INTEGER NOT NULL,
    failed_jobs INTEGER NOT NULL,
    failed_job_ids TEXT NOT NULL,
    options TEXT NULL,
    cancelled_at INTEGER NULL,
    created_at INTEGER NOT NULL,
    finished_at INTEGER NULL,
    dispatching INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE job_locks (
    lock_key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE worker_heartbeats (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    connection TEXT NOT NULL,
    queues TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    jobs_processed INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL
);

CREATE TABLE queue_signals (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
