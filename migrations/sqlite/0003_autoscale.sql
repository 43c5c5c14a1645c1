-- Autoscale decisions and 1-minute metric roll-ups (issue 5), SQLite dialect (see
-- migrations/postgres for the same in PostgreSQL). Conventions as in 0001_init.sql.
--
-- Neither table has a foreign key to its scale set: decisions are history and outlive
-- the set (like activity); roll-ups are deleted with the set by the store, and a
-- collector's batch never fails on a set deleted meanwhile. Both are pruned by age.

-- Append-only.
CREATE TABLE autoscale_decisions (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    scale_set TEXT NOT NULL,
    at        TEXT NOT NULL,
    -- 'scale_out', 'scale_in' or 'none'.
    operation TEXT NOT NULL,
    -- The whole Decision as JSON (its id is the row's).
    document  TEXT NOT NULL
) STRICT;

CREATE INDEX autoscale_decisions_by_scale_set ON autoscale_decisions (scale_set, id);
CREATE INDEX autoscale_decisions_by_at ON autoscale_decisions (at);

-- One minute of one metric of one scale set: the aggregate of the values seen in it.
CREATE TABLE metric_rollups (
    scale_set TEXT    NOT NULL,
    -- The metric's snake_case name ('cpu_percent', …).
    metric    TEXT    NOT NULL,
    -- The start of the minute.
    minute    TEXT    NOT NULL,
    average   REAL    NOT NULL,
    minimum   REAL    NOT NULL,
    maximum   REAL    NOT NULL,
    total     REAL    NOT NULL,
    count     INTEGER NOT NULL,
    PRIMARY KEY (scale_set, metric, minute)
) STRICT, WITHOUT ROWID;

CREATE INDEX metric_rollups_by_minute ON metric_rollups (minute);
