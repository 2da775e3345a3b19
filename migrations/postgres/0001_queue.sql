-- Queue runtime tables. Laravel's columns for jobs, failed_jobs and job_batches, so existing
-- monitoring queries keep working. Times are unix seconds from conecta's injected clock,
-- except failed_at, a UTC timestamp as in Laravel.
CREATE TABLE jobs (
    id BIGSERIAL PRIMARY KEY,
    queue VARCHAR(255) NOT NULL,
    payload TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    reserved_at BIGINT NULL,
    available_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
) WITH (fillfactor = 70);
-- Free space in each page lets a reservation update its row in place (a HOT update) without
-- a new index entry.
CREATE INDEX jobs_queue_id ON jobs (queue, id);

CREATE TABLE failed_jobs (
    id BIGSERIAL PRIMARY KEY,
    uuid VARCHAR(255) NOT NULL UNIQUE,
    connection TEXT NOT NULL,
    queue TEXT NOT NULL,
    payload TEXT NOT NULL,
    exception TEXT NOT NULL,
    failed_at TIMESTAMP(0) NOT NULL
);
CREATE INDEX failed_jobs_failed_at ON failed_jobs (failed_at);

CREATE TABLE job_batches (
    id VARCHAR(255) PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    total_jobs BIGINT NOT NULL,
    pending_jobs BIGINT NOT NULL,
    failed_jobs BIGINT NOT NULL,
    failed_job_ids TEXT NOT NULL,
    options TEXT NULL,
    cancelled_at BIGINT NULL,
    created_at BIGINT NOT NULL,
    finished_at BIGINT NULL,
    dispatching BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE job_locks (
    lock_key VARCHAR(255) PRIMARY KEY,
    owner VARCHAR(255) NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE worker_heartbeats (
    id VARCHAR(64) PRIMARY KEY,
    host VARCHAR(255) NOT NULL,
    pid BIGINT NOT NULL,
    connection VARCHAR(32) NOT NULL,
    queues TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    jobs_processed BIGINT NOT NULL DEFAULT 0,
    status VARCHAR(32) NOT NULL
);

CREATE TABLE queue_signals (
    name VARCHAR(64) PRIMARY KEY,
    value BIGINT NOT NULL
);
