-- Refresh tokens, one row per chain (SQLite's migration 0007 says why). Every token of
-- a chain carries the chain's id (the first 16 bytes of its key); the chain's row
-- holds its current token, updated in place by each rotation, and a token of the
-- chain that is not the current one is an earlier one (reuse).
--
-- chain:      the chain's id (for a token minted before chains: its key's first 16
--             bytes, so that it is found as before)
-- token_hash: the key of the current token; the chain id and 16 zero bytes when the
--             chain has none left (no token has that key)
-- prev_hash, rotated_at: the token before, and when it was rotated (grace period)
-- purge_at:   the current token's expiry rounded up to a whole day, for housekeeping;
--             a rotation changes it at most once a day, so that most rotations change
--             no indexed column and are HOT updates (no index written)
ALTER TABLE refresh_tokens ADD COLUMN chain BYTEA;
ALTER TABLE refresh_tokens ADD COLUMN prev_hash BYTEA;
ALTER TABLE refresh_tokens ADD COLUMN rotated_at BIGINT;
ALTER TABLE refresh_tokens ADD COLUMN purge_at BIGINT;

-- Each stored token becomes a chain of its own; a used one has no current token and
-- is its chain's token before.
UPDATE refresh_tokens
SET chain = substring(token_hash FROM 1 FOR 16),
    purge_at = (expires_at + 86399) / 86400 * 86400,
    prev_hash = CASE WHEN used_at IS NULL THEN NULL ELSE token_hash END,
    rotated_at = used_at,
    token_hash = CASE WHEN used_at IS NULL THEN token_hash
                      ELSE substring(token_hash FROM 1 FOR 16) || '\x00000000000000000000000000000000'::bytea END;

ALTER TABLE refresh_tokens DROP CONSTRAINT refresh_tokens_pkey;
ALTER TABLE refresh_tokens ALTER COLUMN chain SET NOT NULL;
ALTER TABLE refresh_tokens ALTER COLUMN purge_at SET NOT NULL;
ALTER TABLE refresh_tokens ADD PRIMARY KEY (chain);
ALTER TABLE refresh_tokens DROP COLUMN used_at;
DROP INDEX refresh_tokens_expires;
CREATE INDEX refresh_tokens_purge ON refresh_tokens(purge_at);
-- Room on each page for the new version of a row, so that a rotation stays on the page.
ALTER TABLE refresh_tokens SET (fillfactor = 80);
