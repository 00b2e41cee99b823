-- Introspecting an opaque access token reads its row alone. The row carries what the
-- answer needed from two other tables: the user's name (never changed once the user
-- exists) and its grant's state: when the grant lapses (fixed when the grant is made)
-- and when it was revoked (set on every token of the grant in the transaction that
-- revokes the grant, and given to a token inserted after that). Reading the grant and
-- the user row for every introspection meant two more random B-tree lookups each:
-- on a store of a million grants, most of an introspection's time.
ALTER TABLE access_tokens ADD COLUMN username TEXT;
ALTER TABLE access_tokens ADD COLUMN grant_ends_at INTEGER;
ALTER TABLE access_tokens ADD COLUMN grant_revoked_at INTEGER;

UPDATE access_tokens
SET username = (SELECT u.username FROM users u WHERE u.id = access_tokens.user_id)
WHERE user_id IS NOT NULL;

UPDATE access_tokens
SET grant_ends_at = (SELECT g.expires_at FROM grants g WHERE g.id = access_tokens.grant_id),
    grant_revoked_at = (SELECT g.revoked_at FROM grants g WHERE g.id = access_tokens.grant_id)
WHERE grant_id IS NOT NULL;
