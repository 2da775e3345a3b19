-- An occurrence whose run was abandoned (its process died) may run again under the entry's
-- catch-up policy: that second run is attempt 2 of the same occurrence, so the history keeps
-- both. Exactly one row per (entry, due_at, attempt), still claimed by exactly one scheduler.
ALTER TABLE schedule_runs ADD COLUMN attempt BIGINT NOT NULL DEFAULT 1;
DROP INDEX schedule_runs_entry_due;
CREATE UNIQUE INDEX schedule_runs_entry_due ON schedule_runs (entry, due_at, attempt);
