-- What every replica must see although one process measures it (issue 17), SQLite dialect
-- (see migrations/postgres for the same in PostgreSQL). Conventions as in 0001_init.sql.

-- The last probe result of each instance, as the leader's prober last wrote it (every few
-- seconds): what a replica that does not probe shows as `last_probe`, and what a new leader
-- starts from. Goes with its instance.
CREATE TABLE probe_results (
    instance_id TEXT    NOT NULL PRIMARY KEY REFERENCES instances (id) ON DELETE CASCADE,
    at          TEXT    NOT NULL,
    success     INTEGER NOT NULL,
    latency_us  INTEGER NOT NULL,
    detail      TEXT    NOT NULL
) STRICT;

-- Each replica's load balancer frontend counters (cumulative since it started, a JSON array
-- of frontend statistics) and when they were read, by the database's clock: the leader adds
-- every replica's into each set's requests per second.
ALTER TABLE replicas ADD COLUMN frontends TEXT;
ALTER TABLE replicas ADD COLUMN frontends_at TEXT;
