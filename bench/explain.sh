#!/usr/bin/env bash
# The query plans behind bench/store-size.sh's results, on small stores: the
# statements of the token hot path and of housekeeping that depend on the number of
# grants, as the stores run them (copied from crates/server/src/store/*: keep in step),
# and for each the rewrite that does not.
#
#   bench/explain.sh                 # 20000 grants, both backends
#   BENCH_EXPLAIN_ROWS=1000000 BENCH_BACKENDS=postgres bench/explain.sh
#
# Uses store-size.sh's store and fill; PostgreSQL is skipped when it does not answer.
# Mind the size on PostgreSQL: as the store runs it, one batch of housekeeping's grants
# step reads every token row once per grant of the batch (14 s at 20000 grants, and in
# proportion to the number of token rows).

set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/store-size.sh
. "$BENCH_DIR/store-size.sh"

: "${BENCH_EXPLAIN_ROWS:=20000}"
: "${BENCH_EXPLAIN_BACKLOG:=2000}"
BENCH_SUPPLY=0

# The grant condition of rotate_refresh_token, find_active_refresh_token and
# find_active_access_token, and its correlated rewrite.
IN_GRANTS='grant_id IN (SELECT g.id FROM grants g WHERE g.revoked_at IS NULL AND (g.expires_at IS NULL OR g.expires_at > :now))'
EXISTS_GRANT='EXISTS (SELECT 1 FROM grants g WHERE g.id = %s.grant_id AND g.revoked_at IS NULL AND (g.expires_at IS NULL OR g.expires_at > :now))'

sqlite_explain() {
    local db=$STORE_DIR/tessera.db now rt at
    now=$(date +%s)
    # The tokens of grant 500 (the sqlite3 shell has no sha256()).
    rt="x'$(printf 'rt%041d' 500 | sha256sum | cut -c1-64)'"
    local rt_chain="x'$(printf 'rt%041d' 500 | sha256sum | cut -c1-32)'"
    at="x'$(printf 'at%041d' 500 | sha256sum | cut -c1-64)'"
    local sub=${IN_GRANTS//:now/$now}
    local ex_rt ex_at
    ex_rt=$(printf "$EXISTS_GRANT" refresh_tokens)
    ex_at=$(printf "$EXISTS_GRANT" access_tokens)
    ex_rt=${ex_rt//:now/$now} ex_at=${ex_at//:now/$now}
    cat <<EOF | sqlite3 "$db"
.timer on
.print '-- rotate_refresh_token, as the store runs it (in a transaction, rolled back)'
BEGIN;
EXPLAIN QUERY PLAN UPDATE refresh_tokens SET prev_hash = token_hash, rotated_at = $now
 WHERE chain = $rt_chain AND token_hash = $rt AND client_id = '$APP_ID' AND expires_at > $now
   AND $sub RETURNING *;
UPDATE refresh_tokens SET prev_hash = token_hash, rotated_at = $now
 WHERE chain = $rt_chain AND token_hash = $rt AND client_id = '$APP_ID' AND expires_at > $now
   AND $sub RETURNING grant_id;
ROLLBACK;
.print '-- the same with a correlated EXISTS'
BEGIN;
EXPLAIN QUERY PLAN UPDATE refresh_tokens SET prev_hash = token_hash, rotated_at = $now
 WHERE chain = $rt_chain AND token_hash = $rt AND client_id = '$APP_ID' AND expires_at > $now
   AND $ex_rt RETURNING *;
UPDATE refresh_tokens SET prev_hash = token_hash, rotated_at = $now
 WHERE chain = $rt_chain AND token_hash = $rt AND client_id = '$APP_ID' AND expires_at > $now
   AND $ex_rt RETURNING grant_id;
ROLLBACK;
.print '-- find_active_access_token (introspection), as the store runs it'
EXPLAIN QUERY PLAN SELECT * FROM access_tokens
 WHERE token_hash = $at AND revoked_at IS NULL AND expires_at > $now
   AND (grant_id IS NULL OR $sub);
SELECT count(*) FROM access_tokens
 WHERE token_hash = $at AND revoked_at IS NULL AND expires_at > $now
   AND (grant_id IS NULL OR $sub);
.print '-- the same with a correlated EXISTS'
EXPLAIN QUERY PLAN SELECT * FROM access_tokens
 WHERE token_hash = $at AND revoked_at IS NULL AND expires_at > $now
   AND (grant_id IS NULL OR $ex_at);
SELECT count(*) FROM access_tokens
 WHERE token_hash = $at AND revoked_at IS NULL AND expires_at > $now
   AND (grant_id IS NULL OR $ex_at);
EOF
}

pg_explain() {
    local now rt at sub ex_rt ex_at
    now=$(date +%s)
    rt="sha256(convert_to('rt' || lpad('500', 41, '0'), 'UTF8'))"
    local rt_chain="substring($rt FROM 1 FOR 16)"
    at="sha256(convert_to('at' || lpad('500', 41, '0'), 'UTF8'))"
    sub=${IN_GRANTS//:now/$now}
    ex_rt=$(printf "$EXISTS_GRANT" refresh_tokens)
    ex_at=$(printf "$EXISTS_GRANT" access_tokens)
    ex_rt=${ex_rt//:now/$now} ex_at=${ex_at//:now/$now}
    bench_psql "$STORE_URL" <<EOF
\\echo '-- rotate_refresh_token, as the store runs it (rolled back)'
BEGIN;
EXPLAIN (ANALYZE, COSTS OFF) UPDATE refresh_tokens SET prev_hash = token_hash, rotated_at = $now
 WHERE chain = $rt_chain AND token_hash = $rt AND client_id = '$APP_ID' AND expires_at > $now
   AND $sub RETURNING *;
ROLLBACK;
\\echo '-- find_active_access_token (introspection), as the store runs it'
EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM access_tokens
 WHERE token_hash = $at AND revoked_at IS NULL AND expires_at > $now
   AND (grant_id IS NULL OR $sub);
\\echo '-- the same with a correlated EXISTS'
EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM access_tokens
 WHERE token_hash = $at AND revoked_at IS NULL AND expires_at > $now
   AND (grant_id IS NULL OR $ex_at);
EOF
}

# housekeeping's grants step on PostgreSQL, right after its token steps (the
# statistics still those of before the purge, as in a real GC pass).
pg_explain_purge() {
    local now lo hi cond
    now=$(date +%s)
    lo=$((BENCH_EXPLAIN_ROWS + 1)) hi=$((BENCH_EXPLAIN_ROWS + BENCH_EXPLAIN_BACKLOG))
    fill postgres "$lo" "$hi" expired
    cond="(revoked_at IS NOT NULL OR expires_at <= $now)
         AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = grants.id)
         AND NOT EXISTS (SELECT 1 FROM access_tokens a WHERE a.grant_id = grants.id)
         AND NOT EXISTS (SELECT 1 FROM auth_codes c WHERE c.grant_id = grants.id)"
    bench_psql "$STORE_URL" <<EOF
DELETE FROM auth_codes WHERE expires_at <= $now;
DELETE FROM refresh_tokens WHERE purge_at <= $now;
DELETE FROM access_tokens WHERE expires_at <= $now;
\\echo '-- housekeeping, grants step, one batch of 1000, as the store runs it (rolled back)'
\\echo '-- (grants.id is COLLATE "C", the grant_id columns of the token tables are not)'
BEGIN;
EXPLAIN (ANALYZE, COSTS OFF) DELETE FROM grants
 WHERE ctid = ANY(ARRAY(SELECT ctid FROM grants WHERE $cond LIMIT 1000)) AND $cond;
ROLLBACK;
\\echo '-- the same once the grant_id columns are COLLATE "C" too (rolled back)'
BEGIN;
ALTER TABLE refresh_tokens ALTER COLUMN grant_id TYPE TEXT COLLATE "C";
ALTER TABLE access_tokens ALTER COLUMN grant_id TYPE TEXT COLLATE "C";
ALTER TABLE auth_codes ALTER COLUMN grant_id TYPE TEXT COLLATE "C";
EXPLAIN (ANALYZE, COSTS OFF) DELETE FROM grants
 WHERE ctid = ANY(ARRAY(SELECT ctid FROM grants WHERE $cond LIMIT 1000)) AND $cond;
ROLLBACK;
EOF
}

explain_main() {
    local backend
    bench_init
    bench_build
    RESULTS=/dev/null SIZES_FILE=/dev/null
    echo "query plans, $(date -u +%FT%TZ), commit $BENCH_COMMIT, $BENCH_EXPLAIN_ROWS active grants"
    for backend in $BENCH_BACKENDS; do
        if [[ $backend == postgres ]] && ! bench_pg_available; then
            echo "postgres: skipped, $BENCH_PG_ADMIN_URL does not answer"
            continue
        fi
        echo
        echo "== $backend"
        new_store "$backend" "explain_$backend"
        fill "$backend" 1 "$BENCH_EXPLAIN_ROWS" active >&2
        case $backend in
            sqlite) sqlite_explain ;;
            postgres)
                pg_explain
                pg_explain_purge
                ;;
        esac
        drop_store "$backend" "explain_$backend"
    done
}

explain_main "$@"
