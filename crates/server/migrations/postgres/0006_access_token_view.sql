-- Introspecting an opaque access token reads its row alone (SQLite's migration 0006
-- did the same). The row carries what the answer needed from two other tables: the
-- user's name (never changed once the user exists) and its grant's state: when the
-- grant lapses (fixed when the grant is made) and when it was revoked (set on every
-- token of the grant in the transaction that revokes the grant, and given to a token
-- inserted after that). Reading the grant and the user row for every introspection
-- meant two more random index lookups each.
--
-- A token inserted while its grant is being revoked: the insert reads the grant's
-- state with FOR SHARE, which waits for a revocation in progress (its UPDATE of the
-- grant holds a lock that conflicts) and then reads the revoked row; a revocation that
-- starts after the insert read the grant waits for the insert's transaction, and its
-- UPDATE of the grant's tokens, a later statement, sees the new token.
ALTER TABLE access_tokens ADD COLUMN username TEXT;
ALTER TABLE access_tokens ADD COLUMN grant_ends_at BIGINT;
ALTER TABLE access_tokens ADD COLUMN grant_revoked_at BIGINT;

UPDATE access_tokens a
SET username = u.username
FROM users u
WHERE u.id = a.user_id;

UPDATE access_tokens a
SET grant_ends_at = g.expires_at,
    grant_revoked_at = g.revoked_at
FROM grants g
WHERE g.id = a.grant_id;
