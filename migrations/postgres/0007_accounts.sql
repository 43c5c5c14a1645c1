-- Accounts, roles, API tokens and portal sessions (issue 16), PostgreSQL dialect (see
-- migrations/sqlite for the same in SQLite). Conventions as in 0001_init.sql.
--
-- Secrets are never stored: the caller hashes passwords (Argon2id, a PHC string), API
-- tokens (SHA-256, hex) and session ids (SHA-256, hex) before they reach the store.

-- There is no deleting a user (disable it instead); the cascades below are for the day
-- there is. User names sort bytewise, as in SQLite.
CREATE TABLE users (
    name          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    -- 'local' or 'oidc'.
    source        TEXT        NOT NULL,
    -- An Argon2id PHC string; NULL for a user without a password (single sign-on).
    password_hash TEXT,
    disabled      BOOLEAN     NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL,
    created_by    TEXT        NOT NULL
);

-- One role per user and scope. A global assignment (every scale set) has scale_set '' (no
-- scale set is named so): NULLs are distinct in a key, and would let a user hold several
-- global roles. No foreign key to scale_sets: '' is none, and the store deletes a set's
-- assignments with it.
CREATE TABLE role_assignments (
    user_name  TEXT COLLATE "C" NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    -- 'Reader', 'Operator', 'Contributor' or 'Owner'.
    role       TEXT        NOT NULL,
    scale_set  TEXT COLLATE "C" NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    created_by TEXT        NOT NULL,
    PRIMARY KEY (user_name, scale_set)
);

CREATE TABLE api_tokens (
    id           BIGSERIAL   PRIMARY KEY,
    -- SHA-256 of the whole token, lowercase hex: how a request's token is found.
    hash         TEXT        NOT NULL UNIQUE,
    -- The token's first characters ('flt_AbCd'), to recognise it in a list.
    prefix       TEXT        NOT NULL,
    name         TEXT        NOT NULL,
    user_name    TEXT COLLATE "C" NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    -- The most the token may do (a role's name); NULL: as much as its user.
    role         TEXT,
    -- The one scale set the token may touch; NULL: any its user may. Deleted with the set
    -- by the store.
    scale_set    TEXT COLLATE "C",
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);

CREATE INDEX api_tokens_by_user ON api_tokens (user_name, id);

-- The portal's sessions: `data` is the caller's JSON, opaque to the store.
CREATE TABLE sessions (
    id_hash    TEXT        NOT NULL PRIMARY KEY,
    data       TEXT        NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX sessions_by_expires_at ON sessions (expires_at);

-- The activity log filtered by who acted (a user's own history), newest first.
CREATE INDEX activity_by_actor ON activity (actor, id);
