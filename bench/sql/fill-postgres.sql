-- Fill a migrated PostgreSQL store with grants :lo..:hi of client :'client', as the
-- authorization code flow leaves them once the code is exchanged: per grant a user, a
-- consent, the grant, a refresh token and an opaque access token, and the audit event
-- of the grant. With :codes true, also the (consumed) authorization code.
--
-- Ids are MD5 hex (32 digits, like random_id()); token plaintexts are deterministic,
-- 43 characters like random_token(): 'rt' (refresh), 'at' (access), 'ac' (code) and the
-- index zero-padded to 41 digits, stored as SHA-256 like hash_secret(). Times are Unix
-- seconds, spread over a day (i % 86400) so that the time indexes are not degenerate;
-- :grant_exp, :at_exp and :code_exp are the latest expiry of each kind (NULL for
-- grants that never lapse; in the past for an expired backlog). Refresh tokens were
-- issued over the :rt_spread seconds up to :rt_issued and live :rt_ttl seconds (the
-- store-size script picks them so that a rotation is, or is not, its grant's first
-- of the UTC day).
--
-- Run with psql -v lo=... -v hi=... etc. Foreign key triggers are off during the fill
-- (session_replication_role, superuser only): the rows reference each other by
-- construction and the client must exist.

BEGIN;
SET LOCAL session_replication_role = replica;

INSERT INTO users (id, username, password_hash, created_at)
SELECT md5('u' || i), 'bench-user-' || i, :'pwhash', :now - 2592000 - i % 86400
FROM generate_series(:lo, :hi) i;

INSERT INTO consents (user_id, client_id, scope, granted_at, expires_at)
SELECT md5('u' || i), :'client', :'scope', :now - 86400 - i % 86400, NULL
FROM generate_series(:lo, :hi) i;

INSERT INTO grants (id, client_id, user_id, scope, created_at, expires_at, last_used_at)
SELECT md5('g' || i), :'client', md5('u' || i), :'scope', :now - 86400 - i % 86400,
       :grant_exp - i % 86400, NULL
FROM generate_series(:lo, :hi) i;

INSERT INTO auth_codes (code_hash, grant_id, client_id, user_id, redirect_uri,
                        redirect_uri_given, scope, code_challenge, auth_time, expires_at,
                        consumed_at)
SELECT sha256(convert_to('ac' || lpad(i::text, 41, '0'), 'UTF8')), md5('g' || i),
       :'client', md5('u' || i), :'redirect_uri', TRUE, :'scope',
       'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', :code_exp - 60 - i % 86400,
       :code_exp - i % 86400, :code_exp - 30 - i % 86400
FROM generate_series(:lo, :hi) i
WHERE :codes;

-- One chain per grant; the token's key is its whole SHA-256 (a 43-character token),
-- so the chain id is the key's first 16 bytes.
-- With the copy of the grant's lapse time (migration 0007; the grants are not revoked)
-- and of the user's name (migration 0008), as a chain inserted by Tessera has them.
INSERT INTO refresh_tokens (chain, token_hash, grant_id, client_id, user_id, scope, issued_at,
                            expires_at, purge_at, grant_ends_at, username)
SELECT substring(h FROM 1 FOR 16), h, md5('g' || i), :'client', md5('u' || i), :'scope',
       :rt_issued - i % :rt_spread, :rt_issued - i % :rt_spread + :rt_ttl,
       (:rt_issued - i % :rt_spread + :rt_ttl + 86399) / 86400 * 86400, :grant_exp - i % 86400,
       'bench-user-' || i
FROM generate_series(:lo, :hi) i,
     LATERAL (SELECT sha256(convert_to('rt' || lpad(i::text, 41, '0'), 'UTF8')) AS h) k;

-- With the copies of the user's name and the grant's lapse time that introspection
-- reads (migration 0006).
INSERT INTO access_tokens (token_hash, jti, grant_id, client_id, user_id, scope, audience,
                           issued_at, expires_at, username, grant_ends_at)
SELECT sha256(convert_to('at' || lpad(i::text, 41, '0'), 'UTF8')), left(md5('j' || i), 22),
       md5('g' || i), :'client', md5('u' || i), :'scope', :'audience',
       :now - 60 - i % 86400, :at_exp - i % 86400, 'bench-user-' || i,
       :grant_exp - i % 86400
FROM generate_series(:lo, :hi) i;

INSERT INTO audit_events (at, kind, actor, user_id, username, client_id, grant_id, detail)
SELECT :now - 86400 - i % 86400, 'grant', 'person', md5('u' || i), 'bench-user-' || i,
       :'client', md5('g' || i), :'scope' || ' until revoked'
FROM generate_series(:lo, :hi) i;

COMMIT;
