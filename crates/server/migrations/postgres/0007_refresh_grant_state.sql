-- A refresh rotation reads its chain's row and, until now, its grant's row too (is the
-- grant revoked, when does it lapse): once before the rotation to mint the successor,
-- and again in the rotation's UPDATE, each a lookup in the grant's key index and then
-- its row, random pages on a large store. The chain's row now carries a copy of that
-- state, as opaque access tokens do since 0006 (SQLite's migration 0008 does the same):
--
-- grant_ends_at:    when the grant lapses (fixed when the grant is made)
-- grant_revoked_at: when the grant was revoked; set on every chain of the grant in the
--                   transaction that revokes it, and given to a chain inserted after
--                   that
--
-- Locks: a revocation marks the grant's chains before it updates the grant's row, in
-- the order a rotation takes them (its chain's row, then the grant's when it records
-- the grant's use), so that the two cannot deadlock; it marks them again after the
-- grant's row, for a chain whose insert held the grant's row (FOR SHARE) meanwhile.
ALTER TABLE refresh_tokens ADD COLUMN grant_ends_at BIGINT;
ALTER TABLE refresh_tokens ADD COLUMN grant_revoked_at BIGINT;

UPDATE refresh_tokens r
SET grant_ends_at = g.expires_at,
    grant_revoked_at = g.revoked_at
FROM grants g
WHERE g.id = r.grant_id
  -- A grant neither lapsing nor revoked leaves both copies NULL: its chains need no
  -- new row version.
  AND (g.expires_at IS NOT NULL OR g.revoked_at IS NOT NULL);
