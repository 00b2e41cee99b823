-- The person in control: time-limited grants and consents, last use, required scopes,
-- the revocation feed and the audit trail.

ALTER TABLE grants ADD COLUMN expires_at INTEGER;
ALTER TABLE grants ADD COLUMN last_used_at INTEGER;
ALTER TABLE grants ADD COLUMN revoked_by TEXT;
CREATE INDEX grants_user_client ON grants(user_id, client_id);

ALTER TABLE consents ADD COLUMN expires_at INTEGER;

-- Scopes the client cannot work without; refusing one denies the request.
ALTER TABLE clients ADD COLUMN required_scope TEXT NOT NULL DEFAULT '';

-- The revocation feed: an append-only log read by resource servers from a cursor.
CREATE TABLE revocations (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    grant_id   TEXT,
    jti        TEXT,
    expires_at INTEGER,       -- when every token the entry concerns has expired
    created_at INTEGER NOT NULL
);

-- The audit trail. No foreign keys: history outlives deleted users and clients.
CREATE TABLE audit_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
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
