-- Rollouts of model versions (issue 6), PostgreSQL dialect (see migrations/sqlite for the
-- same in SQLite). Conventions as in 0001_init.sql.

-- An instance being replaced by a rolling upgrade with surge: it still serves but no
-- longer counts toward capacity.
ALTER TABLE instances ADD COLUMN retiring BOOLEAN NOT NULL DEFAULT FALSE;

-- One row per rollout, deleted with its scale set. The whole Rollout is the JSON
-- `document`; the columns are authoritative for the fields they hold.
CREATE TABLE rollouts (
    id         BIGSERIAL   PRIMARY KEY,
    scale_set  TEXT COLLATE "C" NOT NULL REFERENCES scale_sets (name) ON DELETE CASCADE,
    -- 'rolling_forward', 'paused', 'completed', 'faulted' or 'cancelled'.
    state      TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    -- Bumped by every write; guards updates against stale writers.
    generation BIGINT      NOT NULL,
    document   TEXT        NOT NULL
);

CREATE INDEX rollouts_by_scale_set ON rollouts (scale_set, id);
-- At most one active rollout per scale set, whichever replica starts it.
CREATE UNIQUE INDEX rollouts_one_active ON rollouts (scale_set)
    WHERE state IN ('rolling_forward', 'paused');
