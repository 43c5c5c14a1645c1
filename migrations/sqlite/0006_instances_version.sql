-- The control plane's tasks (issue 15), SQLite dialect (see migrations/postgres for the same
-- in PostgreSQL). Conventions as in 0001_init.sql.

-- Bumped in the same transaction as every write of the set's instance records (insert,
-- update, mark deleting, delete): a reader that holds the records of a version reads them
-- again only when it changed (the reconciler's steady passes over big sets).
ALTER TABLE scale_sets ADD COLUMN instances_version INTEGER NOT NULL DEFAULT 0;
