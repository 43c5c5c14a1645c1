-- Lifecycle hooks and busy leases (issue 19), SQLite dialect (see migrations/postgres for
-- the same in PostgreSQL). Conventions as in 0001_init.sql.

-- Where the instance is in its set's lifecycle hooks, as JSON
-- (`{"lifecycle_state","lifecycle_hook","lifecycle_deadline","lifecycle_limit"}`); NULL
-- while in service.
ALTER TABLE instances ADD COLUMN lifecycle TEXT;
-- Until when the instance asked not to be removed (`PUT …/instances/{id}/busy`).
ALTER TABLE instances ADD COLUMN busy_until TEXT;
