-- The autoscale lab (issue 18), SQLite dialect (see migrations/postgres for the same in
-- PostgreSQL). Conventions as in 0001_init.sql.

-- One minute of one scale set's collector ticks, written when the minute ends: one line per
-- tick, `milliseconds<TAB>metric=average,minimum,maximum,count<TAB>…`. What the autoscaler
-- read at each evaluation can be read again, so a backtest replays a live run exactly.
CREATE TABLE metric_ticks (
    scale_set TEXT NOT NULL,
    -- The start of the minute.
    minute    TEXT NOT NULL,
    ticks     TEXT NOT NULL,
    PRIMARY KEY (scale_set, minute)
) STRICT, WITHOUT ROWID;

CREATE INDEX metric_ticks_by_minute ON metric_ticks (minute);

-- Decisions of a shadow setting (`PUT …/autoscale/shadow`): stored, never acted on.
ALTER TABLE autoscale_decisions ADD COLUMN shadow INTEGER NOT NULL DEFAULT 0;
