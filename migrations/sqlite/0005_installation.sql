-- Hardening (issue 14), SQLite dialect (see migrations/postgres for the same in PostgreSQL).
-- Conventions as in 0001_init.sql.

-- The installation: one row, written at the first start, whose id is stamped into every VM
-- this installation creates. Flotilla only ever changes VMs carrying it.
CREATE TABLE installation (
    singleton  INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
    id         TEXT    NOT NULL,
    created_at TEXT    NOT NULL
) STRICT;
