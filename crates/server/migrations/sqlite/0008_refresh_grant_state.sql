-- A refresh rotation reads its chain's row and, until now, its grant's row too (is the
-- grant revoked, when does it lapse), twice: once before the rotation to mint the
-- successor, and again in the rotation's UPDATE. On a large store each grant read is two
-- more random B-tree lookups (the grant's key index, then its row), most of a
-- rotation's reads. The chain's row now carries a copy of that state, as opaque access
-- tokens do since 0006:
--
-- grant_ends_at:    when the grant lapses (fixed when the grant is made)
-- grant_revoked_at: when the grant was revoked; set on every chain of the grant in the
--                   transaction that revokes it, and given to a chain inserted after
--                   that
ALTER TABLE refresh_tokens ADD COLUMN grant_ends_at INTEGER;
ALTER TABLE refresh_tokens ADD COLUMN grant_revoked_at INTEGER;

UPDATE refresh_tokens
SET (grant_ends_at, grant_revoked_at) =
    (SELECT g.expires_at, g.revoked_at FROM grants g WHERE g.id = refresh_tokens.grant_id);
