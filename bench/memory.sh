#!/usr/bin/env bash
# Tessera's memory after issuing many tokens: one server on a fresh store, driven with
# client_credentials (wrk, as in bench/run.sh) until BENCH_MEMORY_TOKENS tokens have been
# issued, then its resident set (VmRSS) and peak (VmHWM) from /proc, with the rows the
# store holds. Issue 7's target: RSS under 50 MB after 1 million tokens.
#
#   bench/memory.sh                                        # SQLite, opaque, 1,000,000
#   BENCH_BACKENDS="sqlite postgres" BENCH_MEMORY_FORMATS="opaque jwt" bench/memory.sh
#
# Settings (environment): BENCH_MEMORY_TOKENS (1000000), BENCH_BACKENDS ("sqlite"),
# BENCH_MEMORY_FORMATS ("opaque": durable rows; "jwt": ES256, no row per token),
# BENCH_MEMORY_RUN (30s: the length of one wrk run), BENCH_MEMORY_MAX_RUNS (40: at most
# this many runs per server, whatever was issued), and those of bench/lib.sh
# (BENCH_BIN, BENCH_REV, BENCH_WRK_CONNS, ...).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$BENCH_DIR/lib.sh"

: "${BENCH_MEMORY_TOKENS:=1000000}"
: "${BENCH_BACKENDS:=sqlite}"
: "${BENCH_MEMORY_FORMATS:=opaque}"
: "${BENCH_MEMORY_RUN:=30s}"
: "${BENCH_MEMORY_MAX_RUNS:=40}"

# A value of /proc/PID/status in kB (VmRSS, VmHWM).
proc_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

basic() { printf 'Basic %s' "$(printf '%s:%s' "$1" "$2" | base64 -w0)"; }
json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# Rows in the access_tokens table of the store (opaque tokens only).
count_tokens() {
    local backend=$1 dir=$2 url=$3
    case $backend in
        sqlite) python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM access_tokens").fetchone()[0])' \
            "$dir/tessera.db" ;;
        postgres) bench_psql -Atc 'SELECT count(*) FROM access_tokens' "$url" ;;
    esac
}

measure() {
    local backend=$1 format=$2 label=${1}_${2} dir url json auth issued=0 runs=0 out line
    local rss0 rss hwm rows f
    dir=$BENCH_TMP/$label
    mkdir -p "$dir"
    case $backend in
        sqlite) url=sqlite://$dir/tessera.db ;;
        postgres)
            if ! bench_pg_available; then
                echo "postgres: skipped, $BENCH_PG_ADMIN_URL does not answer"
                return 0
            fi
            bench_pg_create_db "tessera_memory_$format"
            url=$BENCH_PG_URL
            ;;
    esac
    bench_tessera "$dir" "$url" migrate >&2
    bench_tessera "$dir" "$url" scope create read --description "Read" >&2
    json=$(bench_tessera "$dir" "$url" client create --name "bench-$format" --json \
        --scope read --token-format "$format" --grant-type client_credentials)
    auth=$(basic "$(json_field client_id <<<"$json")" "$(json_field client_secret <<<"$json")")
    bench_start_server "$dir" "$url" "$BENCH_TMP/server-$label.log"
    rss0=$(proc_kb "$BENCH_SERVER_PID" VmRSS)
    bench_log "== $backend, $format: RSS at start $rss0 kB; issuing $BENCH_MEMORY_TOKENS tokens"
    while ((issued < BENCH_MEMORY_TOKENS && runs < BENCH_MEMORY_MAX_RUNS)); do
        runs=$((runs + 1))
        out=$BENCH_TMP/wrk-$label-$runs.txt
        BENCH_AUTH=$auth BENCH_WRK_DURATION=$BENCH_MEMORY_RUN \
            bench_wrk "$out" "$BENCH_DIR/lua/client_credentials.lua" "$BENCH_SERVER_URL"
        line=$(bench_wrk_parse "$out")
        read -r -a f <<<"$line"
        ((f[4] == 0)) || bench_die "$backend $format run $runs: ${f[4]} errors (see $out)"
        issued=$((issued + f[3]))
        bench_log "  run $runs: ${f[0]} req/s, p99 ${f[2]} ms; $issued tokens issued," \
            "RSS $(proc_kb "$BENCH_SERVER_PID" VmRSS) kB"
    done
    bench_wait_idle 60
    rss=$(proc_kb "$BENCH_SERVER_PID" VmRSS)
    hwm=$(proc_kb "$BENCH_SERVER_PID" VmHWM)
    rows=-
    [[ $format == opaque ]] && rows=$(count_tokens "$backend" "$dir" "$url")
    bench_stop_server
    printf '%-9s %-7s %10d %12s %10d %10d %10d\n' "$backend" "$format" "$issued" "$rows" \
        "$rss0" "$rss" "$hwm" >>"$RESULTS"
}

main() {
    local start backend format
    start=$(date +%s)
    bench_init
    bench_build
    # PostgreSQL stores need a master key for the signing keys; SQLite works with one too.
    TESSERA_MASTER_KEY=$(bench_master_key)
    export TESSERA_MASTER_KEY
    RESULTS=$BENCH_TMP/results.txt
    : >"$RESULTS"
    echo "tessera memory benchmark, $(date -u +%FT%TZ), $(nproc) cores"
    echo "commit: $BENCH_COMMIT"
    echo "binary: $BENCH_BIN; wrk -t$BENCH_WRK_THREADS -c$BENCH_WRK_CONNS runs of" \
        "$BENCH_MEMORY_RUN until $BENCH_MEMORY_TOKENS tokens; server on cpu" \
        "$BENCH_SERVER_CPU, wrk on cpu $BENCH_WRK_CPU"
    for backend in $BENCH_BACKENDS; do
        for format in $BENCH_MEMORY_FORMATS; do
            measure "$backend" "$format"
        done
    done
    echo
    echo "== Resident memory of the server (kB, from /proc/PID/status); rows: access_tokens"
    printf '%-9s %-7s %10s %12s %10s %10s %10s\n' backend format issued rows \
        "RSS start" "RSS after" "peak"
    cat "$RESULTS"
    echo
    echo "wall time: $(($(date +%s) - start)) s"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
