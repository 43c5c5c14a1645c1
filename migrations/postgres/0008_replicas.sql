-- Control-plane replicas and their leases (issue 17), PostgreSQL dialect (see migrations/sqlite
-- for the same in SQLite). Conventions as in 0001_init.sql.
--
-- Lease and heartbeat times come from the database's clock (PostgreSQL's now(), the one
-- clock every replica shares), never from a replica's.

-- One row per unit of work a replica may hold: 'leader' for the tasks that write for the
-- whole fleet; per-shard leases ('shard/<n>') are rows of the same table. `generation` is
-- the fencing token: raised at every new term, checked by every write a task makes.
CREATE TABLE leases (
    name        TEXT        NOT NULL PRIMARY KEY,
    holder      TEXT        NOT NULL,
    generation  BIGINT      NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL,
    renewed_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);

-- Every `flotilla serve` process, as it announced itself; forgotten an hour after its last
-- heartbeat, removed at a clean stop.
CREATE TABLE replicas (
    id           TEXT NOT NULL PRIMARY KEY,
    host         TEXT NOT NULL,
    version      TEXT NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL
);

-- Which replica wrote an entry and, for what a task did under a lease, its generation.
ALTER TABLE activity ADD COLUMN replica TEXT;
ALTER TABLE activity ADD COLUMN lease_generation BIGINT;
