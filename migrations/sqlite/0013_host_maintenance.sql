-- Host maintenance, SQLite dialect (see migrations/postgres for the same in PostgreSQL).
-- Conventions as in 0001_init.sql.

-- One row per closed hypervisor host (under maintenance, or unreachable): new instances
-- avoid it and each set moves its instances off it. Removed when the host returns. The
-- first record of a host stays until then: closing it again changes nothing.
CREATE TABLE host_maintenance (
    host               TEXT    NOT NULL PRIMARY KEY,
    zone               TEXT    NOT NULL,
    fault_domain       INTEGER NOT NULL CHECK (fault_domain >= 0),
    -- 'maintenance' or 'unreachable'.
    reason             TEXT    NOT NULL,
    started_at         TEXT    NOT NULL,
    -- Who closed it ('user:…', 'token:…', or 'system:hosts' for an unreachable host).
    started_by         TEXT    NOT NULL,
    -- Instances on the host (in service or in a warm pool) when it was closed.
    instances_at_start INTEGER NOT NULL CHECK (instances_at_start >= 0)
) STRICT;
