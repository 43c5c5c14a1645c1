-- Flotilla's schema, PostgreSQL dialect (see migrations/sqlite for the same in SQLite).
--
-- Conventions:
-- * Timestamps are TIMESTAMPTZ (microseconds).
-- * Enums are their snake_case names ('succeeded', 'running', 'in_progress', …).
-- * JSON documents (a set's spec, a model, activity details) are TEXT: nothing queries
--   inside them, and text keeps them exactly as written (JSONB would refuse \u0000).
-- * Integers are BIGINT throughout, as in SQLite.
-- * Scale set names sort bytewise (COLLATE "C"), as in SQLite, whatever the server's locale.
-- * An instance's `latest_model` is not stored: reads derive it from the set's
--   model_version.

CREATE TABLE scale_sets (
    name          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    -- Authoritative on read; kept equal to spec.capacity on write.
    capacity      BIGINT      NOT NULL CHECK (capacity >= 0),
    model_version BIGINT      NOT NULL,
    generation    BIGINT      NOT NULL,
    state         TEXT        NOT NULL,
    -- The ordinal the next new instance gets.
    next_ordinal  BIGINT      NOT NULL DEFAULT 0,
    -- The full ScaleSetSpec as JSON.
    spec          TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE model_versions (
    scale_set  TEXT COLLATE "C" NOT NULL REFERENCES scale_sets (name) ON DELETE CASCADE,
    version    BIGINT      NOT NULL,
    -- The Model as JSON.
    model      TEXT        NOT NULL,
    created_by TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scale_set, version)
);

CREATE TABLE instances (
    id                             TEXT        NOT NULL PRIMARY KEY,
    scale_set                      TEXT COLLATE "C" NOT NULL
                                   REFERENCES scale_sets (name) ON DELETE CASCADE,
    ordinal                        BIGINT      NOT NULL,
    zone                           TEXT        NOT NULL,
    fault_domain                   BIGINT      NOT NULL,
    model_version                  BIGINT      NOT NULL,
    provisioning_state             TEXT        NOT NULL,
    power_state                    TEXT        NOT NULL,
    health_state                   TEXT        NOT NULL,
    desired_power                  TEXT        NOT NULL,
    pending                        TEXT,
    protect_from_scale_in          BOOLEAN     NOT NULL,
    protect_from_scale_set_actions BOOLEAN     NOT NULL,
    address                        TEXT,
    last_error                     TEXT,
    created_at                     TIMESTAMPTZ NOT NULL,
    updated_at                     TIMESTAMPTZ NOT NULL,
    generation                     BIGINT      NOT NULL
);

CREATE INDEX instances_by_scale_set ON instances (scale_set, ordinal);

-- Append-only; kept when its scale set is deleted (no foreign key).
CREATE TABLE activity (
    id         BIGSERIAL   PRIMARY KEY,
    operation  TEXT        NOT NULL,
    actor      TEXT        NOT NULL,
    scale_set  TEXT COLLATE "C",
    target     TEXT        NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    ended_at   TIMESTAMPTZ,
    result     TEXT        NOT NULL,
    error      TEXT,
    -- Operation-specific facts as JSON.
    details    TEXT        NOT NULL
);

CREATE INDEX activity_by_scale_set ON activity (scale_set, id);
CREATE INDEX activity_by_started_at ON activity (started_at);
