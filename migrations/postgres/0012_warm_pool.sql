-- Warm pools (issue 19), PostgreSQL dialect (see migrations/sqlite for the
-- same in SQLite). Conventions as in 0001_init.sql.

-- The instance's place in its set's warm pool, as JSON
-- (`{"warm_pool_state","warm_prepared_at","warm_return"}`); NULL for an instance in service.
-- Counts of instances (`/metrics`, the portal) leave pool members out.
ALTER TABLE instances ADD COLUMN warm TEXT;
