-- Control-plane replicas and their leases (issue 17), SQLite dialect (see migrations/postgres
-- for the same in PostgreSQL). Conventions as in 0001_init.sql.
--
-- Lease and heartbeat times come from the database's clock (here SQLite's 'now', which
-- every process sharing the file reads from one machine), never from a replica's.

-- One row per unit of work a replica may hold: 'leader' for the tasks that write for the
-- whole fleet; per-shard leases ('shard/<n>') are rows of the same table. `generation` is
-- the fencing token: raised at every new term, checked by every write a task makes.
CREATE TABLE leases (
    name        TEXT    NOT NULL PRIMARY KEY,
    holder      TEXT    NOT NULL,
    generation  INTEGER NOT NULL,
    acquired_at TEXT    NOT NULL,
    renewed_at  TEXT    NOT NULL,
    expires_at  TEXT    NOT NULL
) STRICT;

-- Every `flotilla serve` process, as it announced itself; forgotten an hour after its last
-- heartbeat, removed at a clean stop.
CREATE TABLE replicas (
    id           TEXT NOT NULL PRIMARY KEY,
    host         TEXT NOT NULL,
    version      TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL
) STRICT;

-- Which replica wrote an entry and, for what a task did under a lease, its generation.
ALTER TABLE activity ADD COLUMN replica TEXT;
ALTER TABLE activity ADD COLUMN lease_generation INTEGER;
