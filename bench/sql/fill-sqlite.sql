-- Fill a migrated SQLite store with grants :lo..:hi of client :client, as the
-- authorization code flow leaves them once the code is exchanged: per grant a user, a
-- consent, the grant, a refresh token and an opaque access token, and the audit event
-- of the grant. With :codes 1, also the (consumed) authorization code.
--
-- The same rows as fill-postgres.sql (read its header). Run by fill-sqlite.py, which
-- provides md5(text) (hex) and sha256(text) (32-byte BLOB) as PostgreSQL has them, and
-- binds :name parameters; statements end with ';' at the end of a line.

BEGIN;

CREATE TEMP TABLE fill_range AS
WITH RECURSIVE s(i) AS (SELECT :lo WHERE :lo <= :hi UNION ALL SELECT i + 1 FROM s WHERE i < :hi)
SELECT i, md5('u' || i) AS uid, md5('g' || i) AS gid FROM s;

INSERT INTO users (id, username, password_hash, created_at)
SELECT uid, 'bench-user-' || i, :pwhash, :now - 2592000 - i % 86400 FROM fill_range;

INSERT INTO consents (user_id, client_id, scope, granted_at, expires_at)
SELECT uid, :client, :scope, :now - 86400 - i % 86400, NULL FROM fill_range;

INSERT INTO grants (id, client_id, user_id, scope, created_at, expires_at, last_used_at)
SELECT gid, :client, uid, :scope, :now - 86400 - i % 86400, :grant_exp - i % 86400, NULL
FROM fill_range;

INSERT INTO auth_codes (code_hash, grant_id, client_id, user_id, redirect_uri,
                        redirect_uri_given, scope, code_challenge, auth_time, expires_at,
                        consumed_at)
SELECT sha256('ac' || printf('%041d', i)), gid, :client, uid, :redirect_uri, 1, :scope,
       'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', :code_exp - 60 - i % 86400,
       :code_exp - i % 86400, :code_exp - 30 - i % 86400
FROM fill_range
WHERE :codes;

-- One chain per grant; the token's key is its whole SHA-256 (a 43-character token),
-- so the chain id is the key's first 16 bytes.
-- With the copy of the grant's lapse time (migration 0008; the grants are not revoked)
-- and of the user's name (migration 0009), as a chain inserted by Tessera has them.
INSERT INTO refresh_tokens (chain, token_hash, grant_id, client_id, user_id, scope, issued_at,
                            expires_at, purge_at, grant_ends_at, username)
SELECT substr(sha256('rt' || printf('%041d', i)), 1, 16), sha256('rt' || printf('%041d', i)),
       gid, :client, uid, :scope, :rt_issued - i % :rt_spread, :rt_issued - i % :rt_spread + :rt_ttl,
       (:rt_issued - i % :rt_spread + :rt_ttl + 86399) / 86400 * 86400, :grant_exp - i % 86400,
       'bench-user-' || i
FROM fill_range;

INSERT INTO access_tokens (token_hash, jti, grant_id, client_id, user_id, scope, audience,
                           issued_at, expires_at, username, grant_ends_at)
SELECT sha256('at' || printf('%041d', i)), substr(md5('j' || i), 1, 22), gid, :client, uid,
       :scope, :audience, :now - 60 - i % 86400, :at_exp - i % 86400, 'bench-user-' || i,
       :grant_exp - i % 86400
FROM fill_range;

INSERT INTO audit_events (at, kind, actor, user_id, username, client_id, grant_id, detail)
SELECT :now - 86400 - i % 86400, 'grant', 'person', uid, 'bench-user-' || i, :client, gid,
       :scope || ' until revoked'
FROM fill_range;

DROP TABLE fill_range;

COMMIT;
