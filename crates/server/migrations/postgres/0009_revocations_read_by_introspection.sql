-- A refresh rotation that mints an opaque access token inserted an entry into
-- `access_tokens_grant`, the index of the tokens by grant. On a large store that entry
-- lands on a random leaf (the grant is any of millions), written to the WAL (the whole
-- page after every checkpoint) and later to the table's file. The index served three
-- things, now done without it (SQLite's migration 0010 does the same):
--
-- - A revocation marked the grant's tokens (their copy `grant_revoked_at`). Now
--   introspection looks the token's grant up in the revocation feed instead (a table of
--   the grants revoked lately: `revocations_grant` below), where the revocation appends
--   its entry in the same transaction as ever. An entry stays until every access token
--   of the grant has expired (`expires_at`, at least a day: see `revocation.rs`).
-- - A grant's deletion took its tokens (the trigger dropped below). A grant is deleted
--   with its user (whose grants are revoked first, and any left get a feed entry in the
--   same transaction: `delete_user`), with its client (whose tokens go with it, by their
--   own foreign key), or by housekeeping, once its tokens have expired. A token whose
--   grant is gone stays until it expires, refused (it is in the feed, or expired).
-- - Housekeeping kept a grant while it had tokens. Now a revoked grant waits for its
--   feed entry to go (by then its tokens have expired), and a lapsed one does not wait
--   (its tokens expired with it: a token never outlives its grant).
--
-- Tokens of grants revoked before this migration keep their marked copies. Instances of
-- an older version must be stopped before this migration runs: their introspection
-- reads only the copies, which the revocations of this version no longer mark.
DROP TRIGGER grants_take_their_access_tokens ON grants;
DROP FUNCTION grants_take_their_access_tokens();
DROP INDEX access_tokens_grant;
ALTER TABLE revocations ALTER COLUMN grant_id TYPE TEXT COLLATE "C";
CREATE INDEX revocations_grant ON revocations(grant_id);
