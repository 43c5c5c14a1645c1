-- Rollouts of model versions (issue 6), SQLite dialect (see migrations/postgres for the
-- same in PostgreSQL). Conventions as in 0001_init.sql.

-- An instance being replaced by a rolling upgrade with surge: it still serves but no
-- longer counts toward capacity.
ALTER TABLE instances ADD COLUMN retiring INTEGER NOT NULL DEFAULT 0;

-- One row per rollout, deleted with its scale set. The whole Rollout is the JSON
-- `document`; the columns are authoritative for the fields they hold.
CREATE TABLE rollouts (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    scale_set  TEXT    NOT NULL REFERENCES scale_sets (name) ON DELETE CASCADE,
    -- 'rolling_forward', 'paused', 'completed', 'faulted' or 'cancelled'.
    state      TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    -- Bumped by every write; guards updates against stale writers.
    generation INTEGER NOT NULL,
    document   TEXT    NOT NULL
) STRICT;

CREATE INDEX rollouts_by_scale_set ON rollouts (scale_set, id);
-- At most one active rollout per scale set, whichever replica starts it.
CREATE UNIQUE INDEX rollouts_one_active ON rollouts (scale_set)
    WHERE state IN ('rolling_forward', 'paused');
