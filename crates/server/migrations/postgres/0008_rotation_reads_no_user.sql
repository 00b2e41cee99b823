-- A refresh rotation inserts the access token it mints, and on a large store that insert
-- read and wrote random pages besides the chain's own: the user's key and row (for the
-- token's copy of the user's name), and the foreign key checks of `grant_id` and
-- `user_id`, which lock the grant's and the user's rows (FOR KEY SHARE: a change to
-- each row's page, written to the WAL, the whole page after every checkpoint). The
-- rotation already knows both: the chain's row it has just updated exists, so its grant
-- and user do (the chain's foreign keys), and the chain now carries its user's name too
-- (SQLite's migration 0009 does the same).
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
-- the inserts: one of a rotation takes its grant from the chain it has just updated (and
-- holds), any other reads its grant for the copies of its state (FOR SHARE) and inserts
-- nothing without it.
ALTER TABLE access_tokens DROP CONSTRAINT access_tokens_grant_id_fkey;
ALTER TABLE access_tokens DROP CONSTRAINT access_tokens_user_id_fkey;

-- A token of a user without a grant cannot have been stored (see above); one that is
-- would be left behind by its user's deletion, so it goes.
DELETE FROM access_tokens WHERE user_id IS NOT NULL AND grant_id IS NULL;
ALTER TABLE access_tokens ADD CONSTRAINT access_tokens_user_has_grant
    CHECK (user_id IS NULL OR grant_id IS NOT NULL);

-- ON DELETE CASCADE of `grant_id`, also when the grant goes with its user or client.
-- (Run with the search path of this migration, the schema Tessera's tables are in.)
CREATE FUNCTION grants_take_their_access_tokens() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    DELETE FROM access_tokens WHERE grant_id = OLD.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER grants_take_their_access_tokens AFTER DELETE ON grants
FOR EACH ROW EXECUTE FUNCTION grants_take_their_access_tokens();
