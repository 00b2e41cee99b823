-- Refresh tokens, one row per chain. Rotation used to insert a row for the new token
-- and keep the used one until it expired (for reuse detection): a client refreshing
-- every 10 minutes left 4,320 rows per grant behind with 30-day refresh tokens. Now
-- every token of a chain carries the chain's id (the first 16 bytes of its key), and
-- the chain's row holds its current token, updated in place by each rotation; a token
-- of the chain that is not the current one is an earlier one, so reuse is still
-- detected, for any earlier token, with no row for it.
--
-- chain:      the chain's id (for a token minted before chains: its key's first 16
--             bytes, so that it is found as before)
-- token_hash: the key of the current token; the chain id and 16 zero bytes when the
--             chain has none left (no token has that key)
-- prev_hash, rotated_at: the token before, and when it was rotated (grace period)
-- purge_at:   the current token's expiry rounded up to a whole day; indexed for
--             housekeeping, and changed by a rotation at most once a day, so that most
--             rotations write the chain's row alone
CREATE TABLE refresh_chains (
    chain      BLOB PRIMARY KEY,
    token_hash BLOB NOT NULL,
    grant_id   TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    user_id    TEXT REFERENCES users(id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    purge_at   INTEGER NOT NULL,
    prev_hash  BLOB,
    rotated_at INTEGER
) WITHOUT ROWID;

-- Each stored token becomes a chain of its own; a used one has no current token
-- and is its chain's token before.
INSERT INTO refresh_chains (chain, token_hash, grant_id, client_id, user_id, scope,
                            issued_at, expires_at, purge_at, prev_hash, rotated_at)
SELECT substr(token_hash, 1, 16),
       CASE WHEN used_at IS NULL THEN token_hash
            ELSE CAST(substr(token_hash, 1, 16) || zeroblob(16) AS BLOB) END,
       grant_id, client_id, user_id, scope, issued_at, expires_at,
       (expires_at + 86399) / 86400 * 86400,
       CASE WHEN used_at IS NULL THEN NULL ELSE token_hash END,
       used_at
FROM refresh_tokens;

DROP TABLE refresh_tokens;
ALTER TABLE refresh_chains RENAME TO refresh_tokens;
CREATE INDEX refresh_tokens_grant ON refresh_tokens(grant_id);
CREATE INDEX refresh_tokens_purge ON refresh_tokens(purge_at);
