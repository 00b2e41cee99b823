-- Tessera's first schema. Times are Unix seconds (INTEGER). Secrets, codes and tokens
-- are stored only as SHA-256 hashes (BLOB), never in clear.

CREATE TABLE scopes (
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL
);

CREATE TABLE clients (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    secret_hash   BLOB,                 -- NULL for public clients
    redirect_uris TEXT NOT NULL,        -- JSON array of strings
    scope         TEXT NOT NULL,        -- allowed scopes, space separated
    grant_types   TEXT NOT NULL,        -- space separated RFC names
    token_format  TEXT NOT NULL,        -- 'jwt' or 'opaque'
    created_at    INTEGER NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,        -- PHC string, Argon2id
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    auth_time  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- A grant is one token family: the tokens that descend from one authorization.
CREATE TABLE grants (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    user_id    TEXT REFERENCES users(id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX grants_client ON grants(client_id);
CREATE INDEX grants_user ON grants(user_id);

CREATE TABLE auth_codes (
    code_hash          BLOB PRIMARY KEY,
    grant_id           TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
    client_id          TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    user_id            TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    redirect_uri       TEXT NOT NULL,
    redirect_uri_given INTEGER NOT NULL,
    scope              TEXT NOT NULL,
    code_challenge     TEXT NOT NULL,
    auth_time          INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    consumed_at        INTEGER
);

CREATE TABLE refresh_tokens (
    token_hash BLOB PRIMARY KEY,
    grant_id   TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    user_id    TEXT REFERENCES users(id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens(grant_id);

-- Opaque access tokens. JWT access tokens are not stored; a revoked one is listed
-- in revoked_jtis until it expires.
CREATE TABLE access_tokens (
    token_hash BLOB PRIMARY KEY,
    jti        TEXT NOT NULL,
    grant_id   TEXT REFERENCES grants(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    user_id    TEXT REFERENCES users(id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    audience   TEXT NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX access_tokens_grant ON access_tokens(grant_id);

CREATE TABLE revoked_jtis (
    jti        TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
