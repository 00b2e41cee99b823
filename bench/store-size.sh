#!/usr/bin/env bash
# Token endpoint throughput and latency against the size of the store, on SQLite and
# PostgreSQL, and housekeeping (tessera gc) of a backlog of expired rows under load.
# Read bench/README.md first: what is filled, what is measured, how long it takes.
#
#   bench/store-size.sh                       # sizes 0, 1M, 10M; GC backlog 1M rows
#   BENCH_SIZES="0 10000 100000" BENCH_GC_ROWS=100000 bench/store-size.sh   # quick
#
# Settings (environment): BENCH_SIZES ("0 1000000 10000000"), BENCH_BACKENDS
# ("sqlite postgres"), BENCH_SCENARIOS ("client_credentials refresh introspect"),
# BENCH_GC_ROWS (1000000; 0 skips the GC scenario), BENCH_GC_TIMEOUT (600 s),
# BENCH_WARMUP (3s), BENCH_SUPPLY (1024), BENCH_REFRESH_TOKENS (100000),
# BENCH_REFRESH_ISSUED (today, or yesterday), BENCH_SKIP
# (BACKEND:ROWS:SCENARIO glob patterns to leave out, e.g. "sqlite:10000000:refresh"),
# and those of bench/lib.sh (BENCH_BIN, BENCH_REV, BENCH_RUNS, BENCH_WRK_DURATION, ...).

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

: "${BENCH_SIZES:=0 1000000 10000000}"
: "${BENCH_BACKENDS:=sqlite postgres}"
: "${BENCH_SCENARIOS:=client_credentials refresh introspect}"
: "${BENCH_GC_ROWS:=1000000}"
: "${BENCH_GC_TIMEOUT:=600}"
: "${BENCH_WARMUP:=3s}"
# Grants filled on top of the N of each size, so that the empty store has refresh
# tokens to rotate too.
: "${BENCH_SUPPLY:=1024}"
# Most refresh tokens (each of a different grant) read by one run; a run that uses
# them all goes on with the tokens it is given back (reported as "chained").
: "${BENCH_REFRESH_TOKENS:=100000}"
# When the filled refresh tokens were issued: "today" (in the 20 minutes before the
# fill, on the same UTC day) or "yesterday" (before midnight UTC: each first rotation
# of a filled token is then its grant's first of the day). Read README.md.
: "${BENCH_REFRESH_ISSUED:=today}"
case $BENCH_REFRESH_ISSUED in
    today | yesterday) ;;
    *) bench_die "BENCH_REFRESH_ISSUED must be today or yesterday, not $BENCH_REFRESH_ISSUED" ;;
esac

# Access tokens live 2 h instead of 10 min, so that none issued during the run expires
# before the GC scenario (its count of deleted rows is then exactly the backlog).
# The housekeeping of the server itself must not run during the measurements.
export TESSERA_TOKENS__ACCESS_TOKEN_TTL=2h
export TESSERA_HOUSEKEEPING__INTERVAL=24h
export TESSERA_LOG=warn
# Introspection reads the store for every request: what is measured here is the read
# at each store size, not the answers an instance keeps for tokens introspected again
# (bench/run.sh's introspection scenario has those). BENCH_INTROSPECTION_CACHE= (empty)
# leaves the setting out, for builds from before it.
if [[ -n ${BENCH_INTROSPECTION_CACHE-0s} ]]; then
    export TESSERA_TOKENS__INTROSPECTION_CACHE=${BENCH_INTROSPECTION_CACHE-0s}
fi

SCOPE="read write"
REDIRECT_URI=http://127.0.0.1/callback
AUDIENCE=http://127.0.0.1
# A well-formed Argon2id PHC string; the filled users never sign in.
PWHASH='$argon2id$v=19$m=19456,t=2,p=1$YmVuY2hzYWx0YmVuY2g$K7hJUl4FzvYlqGNtqYwZ0wBqvI8wq0hIS6CNwY5sO5I'

# Lines: backend rows scenario rps p50 p99 requests errors max [extra...], where extra
# is chained (refresh), inactive (introspect), or gc_seconds rows_removed (GC).
RESULTS=""
SIZES_FILE=""  # lines: backend rows table heap_bytes index_bytes total_bytes

# ---- one store -------------------------------------------------------------------

# Set up a fresh, migrated store with the scopes and the two clients:
#   STORE_DIR, STORE_URL   data dir and database URL
#   APP_AUTH               Basic auth of "bench-app" (authorization_code, refresh_token)
#   SVC_AUTH               Basic auth of "bench-service" (client_credentials)
#   APP_ID                 the app's client id (the filled grants are the app's)
new_store() {
    local backend=$1 label=$2 json
    STORE_DIR=$BENCH_TMP/$label
    rm -rf "$STORE_DIR"
    mkdir -p "$STORE_DIR"
    case $backend in
        sqlite)
            unset TESSERA_MASTER_KEY
            STORE_URL=sqlite://$STORE_DIR/tessera.db
            ;;
        postgres)
            TESSERA_MASTER_KEY=$(bench_master_key)
            export TESSERA_MASTER_KEY
            bench_pg_create_db "tessera_bench_$label"
            STORE_URL=$BENCH_PG_URL
            ;;
    esac
    bench_tessera "$STORE_DIR" "$STORE_URL" migrate >&2
    bench_tessera "$STORE_DIR" "$STORE_URL" scope create read --description "Read" >&2
    bench_tessera "$STORE_DIR" "$STORE_URL" scope create write --description "Write" >&2
    json=$(bench_tessera "$STORE_DIR" "$STORE_URL" client create --name bench-app --json \
        --redirect-uri "$REDIRECT_URI" --scope "$SCOPE" --token-format opaque \
        --grant-type authorization_code --grant-type refresh_token)
    APP_ID=$(json_field client_id <<<"$json")
    APP_AUTH="Basic $(printf '%s:%s' "$APP_ID" "$(json_field client_secret <<<"$json")" | base64 -w0)"
    json=$(bench_tessera "$STORE_DIR" "$STORE_URL" client create --name bench-service --json \
        --scope read --token-format opaque --grant-type client_credentials)
    SVC_AUTH="Basic $(printf '%s:%s' "$(json_field client_id <<<"$json")" \
        "$(json_field client_secret <<<"$json")" | base64 -w0)"
}

json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

drop_store() {
    local backend=$1 label=$2
    [[ $backend == postgres ]] && bench_pg_drop_db "tessera_bench_$label"
    rm -rf "$STORE_DIR"
}

# Fill grants LO..HI of the app. KIND: active (tokens valid for days) or expired (a
# backlog for housekeeping: lapsed grants with an expired code, refresh and access
# token each).
fill() {
    local backend=$1 lo=$2 hi=$3 kind=$4 now grant_exp at_exp code_exp codes
    local rt_issued rt_spread rt_ttl=$((30 * 86400)) day
    now=$(date +%s)
    day=$((now - now % 86400))
    if [[ $kind == active ]]; then
        grant_exp=NULL at_exp=$((now + 2 * 86400)) code_exp=$((now - 3600)) codes=0
        if [[ $BENCH_REFRESH_ISSUED == today ]]; then
            # Rotated in the last 20 minutes of this UTC day: the store of grants
            # refreshed every few minutes, so a rotation is not its grant's first
            # of the day (which writes more: see README.md).
            rt_issued=$((now - 60 < day ? now : now - 60))
            rt_spread=$((rt_issued - day < 1200 ? rt_issued - day + 1 : 1200))
        else
            # Issued before midnight UTC: every first rotation of a filled token is
            # its grant's first of the day.
            rt_issued=$((day - 60)) rt_spread=1200
        fi
    else
        grant_exp=$((now - 3600)) at_exp=$((now - 3600)) code_exp=$((now - 3600)) codes=1
        # Expired over a day before: a chain goes the day after its token expired
        # (purge_at), so that the whole backlog may go, whatever the hour.
        rt_issued=$((now - 3600 - 86400 - rt_ttl)) rt_spread=86400
    fi
    local vars=(lo="$lo" hi="$hi" now="$now" client="$APP_ID" scope="$SCOPE"
        pwhash="$PWHASH" redirect_uri="$REDIRECT_URI" audience="$AUDIENCE"
        grant_exp="$grant_exp" at_exp="$at_exp" code_exp="$code_exp"
        rt_issued="$rt_issued" rt_spread="$rt_spread" rt_ttl="$rt_ttl")
    case $backend in
        sqlite)
            # Without a server running, the fill may skip the WAL (fill-sqlite.py --bulk).
            local bulk=()
            [[ -n $BENCH_SERVER_PID ]] || bulk=(--bulk)
            python3 "$BENCH_DIR/fill-sqlite.py" "${bulk[@]}" "$STORE_DIR/tessera.db" \
                "$BENCH_DIR/sql/fill-sqlite.sql" "${vars[@]}" codes="$codes"
            ;;
        postgres)
            local v args=()
            for v in "${vars[@]}"; do args+=(-v "$v"); done
            [[ $codes == 1 ]] && args+=(-v codes=true) || args+=(-v codes=false)
            bench_psql "${args[@]}" -f "$BENCH_DIR/sql/fill-postgres.sql" "$STORE_URL"
            # What autovacuum would have done by then; and the fill's dirty pages
            # written out before measuring.
            bench_psql -c "VACUUM ANALYZE" -c "CHECKPOINT" "$STORE_URL"
            ;;
    esac
    # The fill's dirty pages on disk before measuring: their writeback would otherwise
    # stall the durable commits (fsync) of the first runs.
    sync
    # The whole store in the page cache, as on a server that has run for a while:
    # some VMs keep only part of what the fill wrote (750 MB of a 1.6 GB file, seen on
    # one), and the first runs then read pages from disk. PostgreSQL's relations are
    # read with pg_prewarm ('read': into the system's page cache, not into
    # shared_buffers), when the extension can be created.
    case $backend in
        sqlite) cat "$STORE_DIR/tessera.db" >/dev/null ;;
        postgres) prewarm_postgres ;;
    esac
}

# Read every table and index of the PostgreSQL store once (pg_prewarm's 'read' mode).
prewarm_postgres() {
    local t0=$SECONDS blocks
    if ! bench_psql -c "CREATE EXTENSION IF NOT EXISTS pg_prewarm" "$STORE_URL" >&2; then
        bench_log "pg_prewarm unavailable: the store is not read into the page cache"
        return 0
    fi
    blocks=$(bench_psql -Atc "
        SELECT sum(pg_prewarm(c.oid::regclass, 'read'))
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'i')" "$STORE_URL")
    bench_log "prewarm: $blocks blocks read in $((SECONDS - t0)) s"
    bench_psql -c "DROP EXTENSION pg_prewarm" "$STORE_URL" >&2
}

# Append the size of each table (heap, indexes, total) to SIZES_FILE.
record_sizes() {
    local backend=$1 rows=$2
    case $backend in
        sqlite)
            sqlite3 -separator ' ' "$STORE_DIR/tessera.db" "
                SELECT m.tbl_name,
                       COALESCE(SUM(CASE WHEN m.type = 'table' THEN d.pgsize END), 0),
                       COALESCE(SUM(CASE WHEN m.type = 'index' THEN d.pgsize END), 0),
                       SUM(d.pgsize)
                FROM dbstat d JOIN sqlite_master m ON m.name = d.name
                WHERE m.tbl_name NOT LIKE 'sqlite_%' AND m.tbl_name NOT LIKE '_sqlx%'
                GROUP BY m.tbl_name ORDER BY m.tbl_name"
            ;;
        postgres)
            bench_psql -At -F ' ' -c "
                SELECT c.relname, pg_relation_size(c.oid), pg_indexes_size(c.oid),
                       pg_total_relation_size(c.oid)
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname NOT LIKE '_sqlx%'
                ORDER BY c.relname" "$STORE_URL"
            ;;
    esac | awk -v b="$backend" -v n="$rows" '{ print b, n, $0 }' >>"$SIZES_FILE"
}

# ---- the scenarios ---------------------------------------------------------------

WRK_LABEL=""

# Wait until the requests still queued when wrk stopped are done (slow queries), so
# that they do not weigh on the next run: the server idle, and for PostgreSQL no
# statement active in the database. Bounded (300 s each).
settle() {
    local i
    bench_wait_idle 300
    [[ $STORE_URL == postgres* ]] || return 0
    for ((i = 0; i < 300; i++)); do
        (($(bench_psql -Atc "SELECT count(*) FROM pg_stat_activity
              WHERE datname = current_database() AND state = 'active'
                AND pid <> pg_backend_pid()" "$STORE_URL") == 0)) && return 0
        sleep 1
    done
    bench_log "statements still active in the database after 300 s"
}

warm_up() {
    BENCH_WRK_DURATION=$BENCH_WARMUP bench_wrk "$BENCH_TMP/wrk-warmup.txt" "$@"
    settle
}

run_client_credentials() {
    local out=$BENCH_TMP/wrk-$WRK_LABEL-cc-$1.txt
    BENCH_AUTH=$SVC_AUTH bench_wrk "$out" "$BENCH_DIR/lua/client_credentials.lua" \
        "$BENCH_SERVER_URL"
    settle
    bench_wrk_parse "$out"
}

run_refresh() {
    local out=$BENCH_TMP/wrk-$WRK_LABEL-refresh-$1.txt
    BENCH_AUTH=$APP_AUTH bench_wrk "$out" "$BENCH_DIR/lua/refresh.lua" "$BENCH_SERVER_URL" \
        "$BENCH_TMP/refresh-$1.txt"
    settle
    printf '%s %s\n' "$(bench_wrk_parse "$out")" "$(awk '/^chained:/ { print $2 }' "$out")"
}

run_introspect() {
    local out=$BENCH_TMP/wrk-$WRK_LABEL-introspect-$1.txt
    BENCH_AUTH=$SVC_AUTH bench_wrk "$out" "$BENCH_DIR/lua/introspect.lua" "$BENCH_SERVER_URL" \
        "$BENCH_TMP/introspect.txt"
    settle
    printf '%s %s\n' "$(bench_wrk_parse "$out")" "$(awk '/^inactive:/ { print $2 }' "$out")"
}

# Refresh token files: for run r (0 = the warm-up), distinct random grants of 1..TOTAL,
# none used twice over all runs.
refresh_token_files() {
    local total=$1 per_run run
    per_run=$((total / (BENCH_RUNS + 1)))
    ((per_run > BENCH_REFRESH_TOKENS)) && per_run=$BENCH_REFRESH_TOKENS
    shuf -i "1-$total" -n $((per_run * (BENCH_RUNS + 1))) |
        awk '{ printf "rt%041d\n", $1 }' >"$BENCH_TMP/refresh-all.txt"
    for ((run = 0; run <= BENCH_RUNS; run++)); do
        sed -n "$((run * per_run + 1)),$(((run + 1) * per_run))p" \
            "$BENCH_TMP/refresh-all.txt" >"$BENCH_TMP/refresh-$run.txt"
    done
    bench_log "refresh: $per_run tokens of distinct random grants per run"
}

# Whether BACKEND:ROWS:SCENARIO matches a pattern of BENCH_SKIP.
skipped() {
    local pattern
    for pattern in ${BENCH_SKIP:-}; do
        # shellcheck disable=SC2053 # a glob pattern on purpose
        [[ $1 == $pattern ]] && return 0
    done
    return 1
}

# Measure the token endpoint on a store of ROWS active grants (+ BENCH_SUPPLY).
measure_size() {
    local backend=$1 rows=$2 label=${1}_$2 total scenario line t0
    total=$((rows + BENCH_SUPPLY))
    bench_log "== $backend, $rows grants (+$BENCH_SUPPLY): fill"
    new_store "$backend" "$label"
    t0=$(date +%s)
    fill "$backend" 1 "$total" active
    bench_log "filled $total grants in $(($(date +%s) - t0)) s"
    echo "$backend $rows: filled $total grants in $(($(date +%s) - t0)) s;" \
        "load average $(cut -d' ' -f1-3 /proc/loadavg)"
    record_sizes "$backend" "$rows"
    refresh_token_files "$total"
    shuf -r -i "1-$total" -n 10000 | awk '{ printf "at%041d\n", $1 }' >"$BENCH_TMP/introspect.txt"
    bench_start_server "$STORE_DIR" "$STORE_URL" "$BENCH_TMP/server-$label.log"
    WRK_LABEL=$label
    for scenario in $BENCH_SCENARIOS; do
        if skipped "$backend:$rows:$scenario"; then
            bench_log "$backend $rows: $scenario skipped (BENCH_SKIP)"
            echo "$backend $rows $scenario skipped" >>"$RESULTS"
            continue
        fi
        bench_log "$backend $rows: $scenario (load average $(cut -d' ' -f1-3 /proc/loadavg))"
        case $scenario in
            client_credentials)
                BENCH_AUTH=$SVC_AUTH warm_up "$BENCH_DIR/lua/client_credentials.lua" \
                    "$BENCH_SERVER_URL"
                ;;
            refresh)
                BENCH_AUTH=$APP_AUTH warm_up "$BENCH_DIR/lua/refresh.lua" "$BENCH_SERVER_URL" \
                    "$BENCH_TMP/refresh-0.txt"
                ;;
            introspect)
                BENCH_AUTH=$SVC_AUTH warm_up "$BENCH_DIR/lua/introspect.lua" \
                    "$BENCH_SERVER_URL" "$BENCH_TMP/introspect.txt"
                ;;
            *) bench_die "unknown scenario $scenario" ;;
        esac
        line=$(bench_median_runs "run_$scenario")
        echo "$backend $rows $scenario $line" >>"$RESULTS"
    done
    bench_stop_server
    drop_store "$backend" "$label"
}

# ---- housekeeping under load -----------------------------------------------------

# One GC run: wrk on client_credentials, tessera gc (pinned with the server) 1 s in,
# wrk stopped when gc is done. Prints the wrk figures, gc's seconds and rows removed
# (-1 when gc did not finish within BENCH_GC_TIMEOUT).
run_gc() {
    local backend=$1 run=$2 out=$BENCH_TMP/wrk-$WRK_LABEL-gc-$2.txt json=$BENCH_TMP/gc-$2.json
    local t0 t1 removed
    BENCH_AUTH=$SVC_AUTH bench_wrk_start "$out" "$BENCH_DIR/lua/client_credentials.lua" \
        "$BENCH_SERVER_URL" "$((BENCH_GC_TIMEOUT + 30))s"
    sleep 1
    t0=$(date +%s.%N)
    # --foreground: gc stays in our process group, so a signal to the group reaches it.
    if taskset -c "$BENCH_SERVER_CPU" timeout --foreground "$BENCH_GC_TIMEOUT" \
        "$BENCH_BIN" gc --json --data-dir "$STORE_DIR" --database-url "$STORE_URL" >"$json"; then
        removed=$(python3 -c 'import json, sys; print(sum(json.load(sys.stdin).values()))' <"$json")
    else
        bench_log "tessera gc failed or did not finish within ${BENCH_GC_TIMEOUT}s"
        removed=-1
        # PostgreSQL finishes a statement whose client is gone: cancel gc's DELETE.
        if [[ $backend == postgres ]]; then
            bench_psql -Atc "SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid()
                  AND state = 'active' AND query LIKE 'DELETE FROM%'" "$STORE_URL" >/dev/null
        fi
    fi
    t1=$(date +%s.%N)
    bench_wrk_stop
    settle
    printf '%s %.2f %s\n' "$(bench_wrk_parse "$out")" "$(echo "$t1 - $t0" | bc)" "$removed"
}

measure_gc() {
    local backend=$1 label=${1}_gc per_run line run lines=$BENCH_TMP/gc-runs.txt
    per_run=$((BENCH_GC_ROWS / 4))
    bench_log "== $backend, GC of $BENCH_GC_ROWS expired rows ($per_run lapsed grants" \
        "with an expired code, refresh token and access token each) per run"
    new_store "$backend" "$label"
    WRK_LABEL=$label
    fill "$backend" 1 "$per_run" expired
    bench_start_server "$STORE_DIR" "$STORE_URL" "$BENCH_TMP/server-$label.log"
    BENCH_AUTH=$SVC_AUTH warm_up "$BENCH_DIR/lua/client_credentials.lua" "$BENCH_SERVER_URL"
    bench_log "$backend gc: client_credentials without GC (backlog present)"
    line=$(bench_median_runs run_client_credentials)
    echo "$backend $BENCH_GC_ROWS client_credentials(no-gc) $line" >>"$RESULTS"
    bench_log "$backend gc: client_credentials during tessera gc"
    echo "$backend gc: load average $(cut -d' ' -f1-3 /proc/loadavg)"
    : >"$lines"
    for ((run = 1; run <= BENCH_RUNS; run++)); do
        if ((run > 1)); then
            fill "$backend" $(((run - 1) * per_run + 1)) $((run * per_run)) expired
        fi
        line=$(run_gc "$backend" "$run")
        bench_log_run "$run" "$line"
        echo "$line" >>"$lines"
        if [[ ${line##* } == -1 ]]; then
            bench_log "$backend gc: no further runs after a GC that did not finish"
            break
        fi
    done
    line=$(bench_median_lines "$lines")
    # A GC that did not finish is reported as such, whatever the other runs did.
    grep -q -- ' -1$' "$lines" && line="${line% *} -1"
    echo "$backend $BENCH_GC_ROWS client_credentials(during-gc) $line" >>"$RESULTS"
    bench_stop_server
    drop_store "$backend" "$label"
}

# ---- report ----------------------------------------------------------------------

report() {
    echo
    echo "== Token endpoint: median of $BENCH_RUNS runs of wrk -t$BENCH_WRK_THREADS" \
        "-c$BENCH_WRK_CONNS -d$BENCH_WRK_DURATION (GC: a run lasts as long as tessera gc)."
    echo "   rows: active grants filled (+$BENCH_SUPPLY), or for GC the backlog of expired" \
        "rows. Ratios: against the empty store, or for GC against the same store without GC."
    awk '
        function base(s) { sub(/\(during-gc\)/, "(no-gc)", s); return s }
        { line[NR] = $0 }
        ($2 == 0 && $3 !~ /gc/) || $3 ~ /no-gc/ { rps0[$1 " " $3] = $4; p990[$1 " " $3] = $6 }
        END {
            printf "%-9s %9s %-30s %8s %8s %8s %9s %6s %6s %7s %-7s %s\n", "backend", "rows",
                "scenario", "req/s", "p50 ms", "p99 ms", "max ms", "rps x", "p99 x", "errors",
                "in 20%", "notes"
            for (i = 1; i <= NR; i++) {
                split(line[i], f, " ")
                k = f[1] " " base(f[3])
                notes = ""
                if (f[3] == "refresh") notes = "chained=" f[10]
                if (f[3] == "introspect") notes = "inactive=" f[10]
                if (f[3] ~ /during-gc/) notes = "gc=" f[10] "s removed=" f[11]
                if (f[3] ~ /during-gc/ && f[11] == -1) notes = "gc DID NOT FINISH in " f[10] "s"
                rx = "-"; px = "-"; ok = "(base)"
                if ((k in rps0) && !(f[2] == 0 && f[3] !~ /gc/) && f[3] !~ /no-gc/) {
                    rx = sprintf("%.2f", f[4] / rps0[k]); px = sprintf("%.2f", f[6] / p990[k])
                    ok = (rx >= 0.8 && px <= 1.2) ? "yes" : "NO"
                    if (f[3] ~ /during-gc/ && f[11] == -1) ok = "NO"
                }
                if (f[4] == "skipped") {
                    printf "%-9s %9s %-30s %8s\n", f[1], f[2], f[3], "skipped (BENCH_SKIP)"
                    continue
                }
                if (f[7] == 0) {
                    printf "%-9s %9s %-30s %8d %8s %8s %9s %6s %6s %7s %-7s %s\n", f[1], f[2],
                        f[3], 0, "-", "-", "-", "0.00", "-", "-", "NO",
                        "not one answer within wrk'"'"'s 10 s timeout"
                    continue
                }
                printf "%-9s %9s %-30s %8d %8.2f %8.2f %9.1f %6s %6s %7d %-7s %s\n", f[1], f[2],
                    f[3], f[4], f[5], f[6], f[9], rx, px, f[8], ok, notes
            }
        }' "$RESULTS"
    [[ -s $SIZES_FILE ]] || return 0
    echo
    echo "== Table sizes after the fill, in bytes (rows: active grants, +$BENCH_SUPPLY)"
    printf '%-9s %9s %-22s %14s %14s %14s\n' backend rows table heap indexes total
    awk '$6 > 0 { printf "%-9s %9s %-22s %14d %14d %14d\n", $1, $2, $3, $4, $5, $6 }' \
        "$SIZES_FILE"
    echo
    echo "== Per million active grants: growth of each table from the smallest to the" \
        "largest size measured, scaled to 10^6 grants (tables growing < 1 KiB left out)"
    printf '%-9s %-22s %12s %12s %12s\n' backend table "heap MiB" "indexes MiB" "total MiB"
    awk '
        { t = $1 " " $3
          if (!(t in lo) || $2 < lo[t]) { lo[t] = $2; lo_h[t] = $4; lo_i[t] = $5; lo_b[t] = $6 }
          if (!(t in hi) || $2 > hi[t]) { hi[t] = $2; hi_h[t] = $4; hi_i[t] = $5; hi_b[t] = $6 } }
        END {
            for (t in hi) {
                if (hi[t] == lo[t]) continue
                s = 1e6 / (hi[t] - lo[t]) / 1048576
                if ((hi_b[t] - lo_b[t]) * s * 1048576 < 1024) continue
                split(t, k, " ")
                printf "%s %s %.1f %.1f %.1f\n", k[1], k[2], (hi_h[t] - lo_h[t]) * s,
                    (hi_i[t] - lo_i[t]) * s, (hi_b[t] - lo_b[t]) * s
            }
        }' "$SIZES_FILE" | sort -k1,1 -k2,2 | awk '
        { printf "%-9s %-22s %12.1f %12.1f %12.1f\n", $1, $2, $3, $4, $5
          h[$1] += $3; x[$1] += $4; b[$1] += $5; if (!($1 in seen)) { seen[$1] = 1; o[++n] = $1 } }
        END { for (j = 1; j <= n; j++)
                  printf "%-9s %-22s %12.1f %12.1f %12.1f\n", o[j], "TOTAL", h[o[j]], x[o[j]], b[o[j]] }'
}

main() {
    local start backend rows
    start=$(date +%s)
    bench_init
    bench_build
    RESULTS=$BENCH_TMP/results.txt SIZES_FILE=$BENCH_TMP/sizes.txt
    : >"$RESULTS"
    : >"$SIZES_FILE"
    echo "tessera store-size benchmark, $(date -u +%FT%TZ), $(nproc) cores"
    echo "commit: $BENCH_COMMIT"
    echo "binary: $BENCH_BIN; sizes: $BENCH_SIZES; GC backlog: $BENCH_GC_ROWS rows;" \
        "server on cpu $BENCH_SERVER_CPU, wrk on cpu $BENCH_WRK_CPU;" \
        "filled refresh tokens issued $BENCH_REFRESH_ISSUED"
    for backend in $BENCH_BACKENDS; do
        if [[ $backend == postgres ]] && ! bench_pg_available; then
            echo "postgres: skipped, $BENCH_PG_ADMIN_URL does not answer"
            continue
        fi
        for rows in $BENCH_SIZES; do
            measure_size "$backend" "$rows"
        done
        if ((BENCH_GC_ROWS > 0)); then
            measure_gc "$backend"
        fi
    done
    report
    echo
    echo "wall time: $(($(date +%s) - start)) s"
}

# Sourced (for a look at one step), only the functions are defined.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
