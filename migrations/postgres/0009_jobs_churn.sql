-- The jobs table churns: every job is inserted, updated once per delivery and deleted. Vacuum
-- it after a small share of dead rows rather than the default fifth of the table, so the
-- reservation scan never walks a long tail of dead tuples, and without the cost-based pauses
-- that let it fall behind a busy queue.
ALTER TABLE jobs SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_vacuum_cost_delay = 0
);
