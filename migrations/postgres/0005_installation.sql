-- Hardening (issue 14), PostgreSQL dialect (see migrations/sqlite for the same in SQLite).
-- Conventions as in 0001_init.sql.

-- The installation: one row, written at the first start, whose id is stamped into every VM
-- this installation creates. Flotilla only ever changes VMs carrying it.
CREATE TABLE installation (
    singleton  BIGINT      NOT NULL PRIMARY KEY CHECK (singleton = 1),
    id         TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
