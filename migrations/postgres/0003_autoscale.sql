-- Autoscale decisions and 1-minute metric roll-ups (issue 5), PostgreSQL dialect (see
-- migrations/sqlite for the same in SQLite). Conventions as in 0001_init.sql.
--
-- Neither table has a foreign key to its scale set: decisions are history and outlive
-- the set (like activity); roll-ups are deleted with the set by the store, and a
-- collector's batch never fails on a set deleted meanwhile. Both are pruned by age.

-- Append-only.
CREATE TABLE autoscale_decisions (
    id        BIGSERIAL   PRIMARY KEY,
    scale_set TEXT COLLATE "C" NOT NULL,
    at        TIMESTAMPTZ NOT NULL,
    -- 'scale_out', 'scale_in' or 'none'.
    operation TEXT        NOT NULL,
    -- The whole Decision as JSON (its id is the row's).
    document  TEXT        NOT NULL
);

CREATE INDEX autoscale_decisions_by_scale_set ON autoscale_decisions (scale_set, id);
CREATE INDEX autoscale_decisions_by_at ON autoscale_decisions (at);

-- One minute of one metric of one scale set: the aggregate of the values seen in it.
CREATE TABLE metric_rollups (
    scale_set TEXT COLLATE "C" NOT NULL,
    -- The metric's snake_case name ('cpu_percent', …).
    metric    TEXT COLLATE "C" NOT NULL,
    -- The start of the minute.
    minute    TIMESTAMPTZ      NOT NULL,
    average   DOUBLE PRECISION NOT NULL,
    minimum   DOUBLE PRECISION NOT NULL,
    maximum   DOUBLE PRECISION NOT NULL,
    total     DOUBLE PRECISION NOT NULL,
    count     BIGINT           NOT NULL,
    PRIMARY KEY (scale_set, metric, minute)
);

CREATE INDEX metric_rollups_by_minute ON metric_rollups (minute);
