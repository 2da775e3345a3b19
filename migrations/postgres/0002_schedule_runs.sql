-- One row per occurrence the scheduler claimed (or a manual run-task). The unique key on
-- (entry, due_at) is what makes any number of schedulers fire each occurrence once.
-- due_at, started_at and finished_at are unix milliseconds from conecta's clock.
CREATE TABLE schedule_runs (
    id BIGSERIAL PRIMARY KEY,
    entry VARCHAR(255) NOT NULL,
    task VARCHAR(255) NOT NULL,
    due_at BIGINT NOT NULL,
    manual BIGINT NOT NULL DEFAULT 0,
    runner VARCHAR(255) NOT NULL,
    claim_token VARCHAR(64) NOT NULL,
    started_at BIGINT NULL,
    finished_at BIGINT NULL,
    outcome VARCHAR(32) NOT NULL,
    error TEXT NULL
);
CREATE UNIQUE INDEX schedule_runs_entry_due ON schedule_runs (entry, due_at);
