-- Flotilla's schema, SQLite dialect (see migrations/postgres for the same in PostgreSQL).
--
-- Conventions:
-- * Timestamps are TEXT, RFC 3339 in UTC with exactly six fractional digits
--   ('2024-05-01T12:00:00.000000Z'): fixed width, so text order is time order.
-- * Enums are their snake_case names ('succeeded', 'running', 'in_progress', …).
-- * JSON documents (a set's spec, a model, activity details) are TEXT.
-- * Booleans are INTEGER 0/1. Tables are STRICT, so a wrongly typed write fails loudly.
-- * An instance's `latest_model` is not stored: reads derive it from the set's
--   model_version.

CREATE TABLE scale_sets (
    name          TEXT    NOT NULL PRIMARY KEY,
    -- Authoritative on read; kept equal to spec.capacity on write.
    capacity      INTEGER NOT NULL CHECK (capacity >= 0),
    model_version INTEGER NOT NULL,
    generation    INTEGER NOT NULL,
    state         TEXT    NOT NULL,
    -- The ordinal the next new instance gets.
    next_ordinal  INTEGER NOT NULL DEFAULT 0,
    -- The full ScaleSetSpec as JSON.
    spec          TEXT    NOT NULL,
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL
) STRICT;

CREATE TABLE model_versions (
    scale_set  TEXT    NOT NULL REFERENCES scale_sets (name) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    -- The Model as JSON.
    model      TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    PRIMARY KEY (scale_set, version)
) STRICT;

CREATE TABLE instances (
    id                             TEXT    NOT NULL PRIMARY KEY,
    scale_set                      TEXT    NOT NULL REFERENCES scale_sets (name) ON DELETE CASCADE,
    ordinal                        INTEGER NOT NULL,
    zone                           TEXT    NOT NULL,
    fault_domain                   INTEGER NOT NULL,
    model_version                  INTEGER NOT NULL,
    provisioning_state             TEXT    NOT NULL,
    power_state                    TEXT    NOT NULL,
    health_state                   TEXT    NOT NULL,
    desired_power                  TEXT    NOT NULL,
    pending                        TEXT,
    protect_from_scale_in          INTEGER NOT NULL,
    protect_from_scale_set_actions INTEGER NOT NULL,
    address                        TEXT,
    last_error                     TEXT,
    created_at                     TEXT    NOT NULL,
    updated_at                     TEXT    NOT NULL,
    generation                     INTEGER NOT NULL
) STRICT;

CREATE INDEX instances_by_scale_set ON instances (scale_set, ordinal);

-- Append-only; kept when its scale set is deleted (no foreign key).
CREATE TABLE activity (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    operation  TEXT NOT NULL,
    actor      TEXT NOT NULL,
    scale_set  TEXT,
    target     TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at   TEXT,
    result     TEXT NOT NULL,
    error      TEXT,
    -- Operation-specific facts as JSON.
    details    TEXT NOT NULL
) STRICT;

CREATE INDEX activity_by_scale_set ON activity (scale_set, id);
CREATE INDEX activity_by_started_at ON activity (started_at);
