-- Tessera's schema for PostgreSQL: the SQLite schema after its migrations 0001..0003,
-- in one step. Times are Unix seconds (BIGINT). Secrets, codes and tokens are stored
-- only as SHA-256 hashes (BYTEA), never in clear. JSON columns are TEXT, as in SQLite.
-- Columns that lists are ordered or paged by use the "C" collation, so that the order
-- is bytewise (as in SQLite) whatever the database's default collation.

CREATE TABLE scopes (
    name        TEXT COLLATE "C" PRIMARY KEY,
    description TEXT NOT NULL
);

CREATE TABLE clients (
    id                         TEXT COLLATE "C" PRIMARY KEY,
    name                       TEXT NOT NULL,
    secret_hash                BYTEA,                -- NULL for clients without a secret
    redirect_uris              TEXT NOT NULL,        -- JSON array of strings
    scope                      TEXT NOT NULL,        -- allowed scopes, space separated
    required_scope             TEXT NOT NULL DEFAULT '',
    grant_types                TEXT NOT NULL,        -- space separated RFC names
    token_format               TEXT NOT NULL,        -- 'jwt' or 'opaque'
    created_at                 BIGINT NOT NULL,
    token_endpoint_auth_method TEXT NOT NULL DEFAULT 'client_secret_basic',
    jwks                       TEXT,                 -- a JWK Set document (JSON)
    jwks_uri                   TEXT,
    client_uri                 TEXT,
    logo_uri                   TEXT,
    policy_uri                 TEXT,
    tos_uri                    TEXT,
    contacts                   TEXT NOT NULL DEFAULT '[]',  -- JSON array
    software_id                TEXT,
    software_version           TEXT,
    -- Registered through RFC 7591 (shown as unverified on the consent page).
    dynamic                    BOOLEAN NOT NULL DEFAULT FALSE,
    -- RFC 7592 registration access token (SHA-256).
    registration_token_hash    BYTEA,
    -- The secret before the last rotation, accepted until previous_secret_expires_at.
    previous_secret_hash       BYTEA,
    previous_secret_expires_at BIGINT,
    -- client_secret_jwt only: the secret, sealed with AES-256-GCM.
    secret_sealed              BYTEA,
    updated_at                 BIGINT
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT COLLATE "C" NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,        -- PHC string, Argon2id
    created_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash BYTEA PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    auth_time  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    expires_at BIGINT,
    PRIMARY KEY (user_id, client_id)
);

-- A grant is one token family: the tokens that descend from one authorization.
CREATE TABLE grants (
    id           TEXT COLLATE "C" PRIMARY KEY,
    client_id    TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    user_id      TEXT REFERENCES users(id) ON DELETE CASCADE,
    scope        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    expires_at   BIGINT,
    last_used_at BIGINT,
    revoked_by   TEXT
);
CREATE INDEX grants_client ON grants(client_id);
CREATE INDEX grants_user ON grants(user_id);
CREATE INDEX grants_user_client ON grants(user_id, client_id);

CREATE TABLE auth_codes (
    code_hash          BYTEA PRIMARY KEY,
    grant_id           TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
    client_id          TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    user_id            TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    redirect_uri       TEXT NOT NULL,
    redirect_uri_given BOOLEAN NOT NULL,
    scope              TEXT NOT NULL,
    code_challenge     TEXT NOT NULL,
    auth_time          BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    consumed_at        BIGINT
);

CREATE TABLE refresh_tokens (
    token_hash BYTEA PRIMARY KEY,
    grant_id   TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    user_id    TEXT REFERENCES users(id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens(grant_id);

-- Opaque access tokens. JWT access tokens are not stored; a revoked one is listed
-- in revoked_jtis until it expires.
CREATE TABLE access_tokens (
    token_hash BYTEA PRIMARY KEY,
    jti        TEXT NOT NULL,
    grant_id   TEXT REFERENCES grants(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    user_id    TEXT REFERENCES users(id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    audience   TEXT NOT NULL,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX access_tokens_grant ON access_tokens(grant_id);

CREATE TABLE revoked_jtis (
    jti        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

-- The revocation feed: an append-only log read by resource servers from a cursor.
CREATE TABLE revocations (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    grant_id   TEXT,
    jti        TEXT,
    expires_at BIGINT,        -- when every token the entry concerns has expired
    created_at BIGINT NOT NULL
);

-- The audit trail. No foreign keys: history outlives deleted users and clients.
CREATE TABLE audit_events (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        BIGINT NOT NULL,
    kind      TEXT NOT NULL,  -- grant, token, refresh, revoke, login_failed
    actor     TEXT NOT NULL,  -- person, client, admin, system
    user_id   TEXT,
    username  TEXT,
    client_id TEXT,
    grant_id  TEXT,
    detail    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_user ON audit_events(user_id, id);
CREATE INDEX audit_events_client ON audit_events(client_id, id);

-- JWT client assertions seen, so that a jti is accepted once within its lifetime.
CREATE TABLE client_assertion_jtis (
    client_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);

CREATE TABLE admin_tokens (
    id         TEXT COLLATE "C" PRIMARY KEY,
    name       TEXT NOT NULL,
    token_hash BYTEA NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

-- RFC 7591 §3: initial access tokens that authorize dynamic registration.
CREATE TABLE initial_access_tokens (
    id         TEXT PRIMARY KEY,
    token_hash BYTEA NOT NULL UNIQUE,
    scope      TEXT NOT NULL,         -- scopes a client registered with it may get
    uses_left  BIGINT,                -- NULL: unlimited
    expires_at BIGINT,                -- NULL: never
    created_at BIGINT NOT NULL
);
