-- Client registration: RFC 7591/7592 metadata, key-based client authentication,
-- secret rotation with a grace period, admin API tokens and initial access tokens.

ALTER TABLE clients ADD COLUMN token_endpoint_auth_method TEXT NOT NULL DEFAULT 'client_secret_basic';
UPDATE clients SET token_endpoint_auth_method = 'none' WHERE secret_hash IS NULL;
ALTER TABLE clients ADD COLUMN jwks TEXT;                 -- a JWK Set document (JSON)
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;
ALTER TABLE clients ADD COLUMN client_uri TEXT;
ALTER TABLE clients ADD COLUMN logo_uri TEXT;
ALTER TABLE clients ADD COLUMN policy_uri TEXT;
ALTER TABLE clients ADD COLUMN tos_uri TEXT;
ALTER TABLE clients ADD COLUMN contacts TEXT NOT NULL DEFAULT '[]';  -- JSON array
ALTER TABLE clients ADD COLUMN software_id TEXT;
ALTER TABLE clients ADD COLUMN software_version TEXT;
-- 1 when registered through RFC 7591 (shown as unverified on the consent page).
ALTER TABLE clients ADD COLUMN dynamic INTEGER NOT NULL DEFAULT 0;
-- RFC 7592 registration access token (SHA-256).
ALTER TABLE clients ADD COLUMN registration_token_hash BLOB;
-- The secret before the last rotation, accepted until previous_secret_expires_at.
ALTER TABLE clients ADD COLUMN previous_secret_hash BLOB;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at INTEGER;
-- client_secret_jwt needs the secret itself as the HMAC key: only for clients that
-- use it, the secret is kept encrypted (AES-256-GCM) under a key of the data dir.
ALTER TABLE clients ADD COLUMN secret_sealed BLOB;
ALTER TABLE clients ADD COLUMN updated_at INTEGER;

-- JWT client assertions seen, so that a jti is accepted once within its lifetime.
CREATE TABLE client_assertion_jtis (
    client_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
);

CREATE TABLE admin_tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

-- RFC 7591 §3: initial access tokens that authorize dynamic registration.
CREATE TABLE initial_access_tokens (
    id         TEXT PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    scope      TEXT NOT NULL,         -- scopes a client registered with it may get
    uses_left  INTEGER,               -- NULL: unlimited
    expires_at INTEGER,               -- NULL: never
    created_at INTEGER NOT NULL
);
