-- Host maintenance, PostgreSQL dialect (see migrations/sqlite for the same in SQLite).
-- Conventions as in 0001_init.sql.

-- One row per closed hypervisor host (under maintenance, or unreachable): new instances
-- avoid it and each set moves its instances off it. Removed when the host returns. The
-- first record of a host stays until then: closing it again changes nothing. Host names
-- sort bytewise, as in SQLite.
CREATE TABLE host_maintenance (
    host               TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    zone               TEXT        NOT NULL,
    fault_domain       BIGINT      NOT NULL CHECK (fault_domain >= 0),
    -- 'maintenance' or 'unreachable'.
    reason             TEXT        NOT NULL,
    started_at         TIMESTAMPTZ NOT NULL,
    -- Who closed it ('user:…', 'token:…', or 'system:hosts' for an unreachable host).
    started_by         TEXT        NOT NULL,
    -- Instances on the host (in service or in a warm pool) when it was closed.
    instances_at_start BIGINT      NOT NULL CHECK (instances_at_start >= 0)
);
