-- A refresh rotation inserts the access token it mints, and on a large store that insert
-- read three random B-tree pages besides the chain's own: the user's key and row (for
-- the token's copy of the user's name, and for the foreign key check of `user_id`) and
-- the grant's key (for the foreign key check of `grant_id`). The rotation already knows
-- both: the chain's row it has just updated exists, so its grant and user do (the
-- chain's foreign keys), and the chain now carries its user's name too.
--
-- refresh_tokens.username: the chain's user's name (a user's name never changes), given
--                          to the access tokens its rotations mint. A new chain gets it
--                          when inserted; a chain stored before this migration gets it
--                          from its first rotation after it (one read of the user then),
--                          so that this migration does not rewrite every chain.
ALTER TABLE refresh_tokens ADD COLUMN username TEXT;

-- access_tokens without the foreign keys of `grant_id` and `user_id`. What they did on
-- delete is kept:
-- - a grant's tokens go with it (the trigger below, through `access_tokens_grant`);
-- - a user's tokens go with the user's grants (a user's deletion cascades to the
--   grants): a token of a user is always of one of the user's grants, which the CHECK
--   holds to (the token's user is its grant's: the code's or the chain's user).
-- What they did on insert, refusing a token of a grant that does not exist, is done by
-- the inserts: one of a rotation takes its grant from the chain it has just updated,
-- any other reads its grant for the copies of its state and inserts nothing without it.
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
);

-- A token of a user without a grant cannot have been stored (see above); one that is
-- would be left behind by its user's deletion, so it is not carried over.
INSERT INTO access_tokens_new (token_hash, jti, grant_id, client_id, user_id, scope, audience,
                               issued_at, expires_at, revoked_at, username, grant_ends_at,
                               grant_revoked_at)
SELECT token_hash, jti, grant_id, client_id, user_id, scope, audience, issued_at, expires_at,
       revoked_at, username, grant_ends_at, grant_revoked_at
FROM access_tokens
WHERE user_id IS NULL OR grant_id IS NOT NULL;

DROP TABLE access_tokens;
ALTER TABLE access_tokens_new RENAME TO access_tokens;
CREATE INDEX access_tokens_grant ON access_tokens(grant_id);
CREATE INDEX access_tokens_expires ON access_tokens(expires_at);

-- ON DELETE CASCADE of `grant_id`, also when the grant goes with its user or client.
CREATE TRIGGER grants_take_their_access_tokens AFTER DELETE ON grants
BEGIN
    DELETE FROM access_tokens WHERE grant_id = OLD.id;
END;
