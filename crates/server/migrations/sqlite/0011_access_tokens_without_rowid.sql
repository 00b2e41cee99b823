-- access_tokens keyed by the token's key alone (WITHOUT ROWID): a token's row was a row
-- of a rowid table, found through a separate index of the keys (`token_hash`'s PRIMARY
-- KEY), so that introspection descended two B-trees and an insert wrote into both. Now
-- the row is stored in the key's B-tree: one descent, one insert fewer. (A token's key
-- grows with time, so a new row lands at the end of that B-tree, as it did in both.)
CREATE TABLE access_tokens_new (
    token_hash       BLOB PRIMARY KEY,
    jti              TEXT NOT NULL,
    grant_id         TEXT,
    client_id        TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    user_id          TEXT,
    scope            TEXT NOT NULL,
    audience         TEXT NOT NULL,
    issued_at        INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    revoked_at       INTEGER,
    username         TEXT,
    grant_ends_at    INTEGER,
    grant_revoked_at INTEGER,
    CHECK (user_id IS NULL OR grant_id IS NOT NULL)
) WITHOUT ROWID;

INSERT INTO access_tokens_new (token_hash, jti, grant_id, client_id, user_id, scope, audience,
                               issued_at, expires_at, revoked_at, username, grant_ends_at,
                               grant_revoked_at)
SELECT token_hash, jti, grant_id, client_id, user_id, scope, audience, issued_at, expires_at,
       revoked_at, username, grant_ends_at, grant_revoked_at
FROM access_tokens;

DROP TABLE access_tokens;
ALTER TABLE access_tokens_new RENAME TO access_tokens;
CREATE INDEX access_tokens_expires ON access_tokens(expires_at);
