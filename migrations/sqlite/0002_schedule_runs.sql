-- One row per occurrence the scheduler claimed (or a manual run-task). The unique key on
-- (entry, due_at) is what makes any number of schedulers fire each occurrence once.
-- due_at, started_at and finished_at are unix milliseconds from conecta's clock.
CREATE TABLE schedule_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    entry TEXT NOT NULL,
    task TEXT NOT NULL,
    due_at INTEGER NOT NULL,
    manual INTEGER NOT NULL DEFAULT 0,
    runner TEXT NOT NULL,
    claim_token TEXT NOT NULL,
    started_at INTEGER NULL,
    finished_at INTEGER NULL,
    outcome TEXT NOT NULL,
    error TEXT NULL
);
CREATE UNIQUE INDEX schedule_runs_entry_due ON schedule_runs (entry, due_at);
