#!/usr/bin/env bash
# Two builds of Tessera side by side on a large store, their runs alternating: what a
# change does to the token endpoint at a size where separate store-size.sh runs, each
# with its own fill and its own hour, are too noisy to tell apart.
#
#   bench/ab.sh BACKEND GRANTS ROUNDS LABEL_A BINARY_A LABEL_B BINARY_B
#   bench/ab.sh sqlite 3000000 3 before /tmp/tessera-before after target/release/tessera
#
# Each build migrates and fills a store of its own (a template: store-size.sh's fill of
# GRANTS + BENCH_SUPPLY active grants, the store each build's migrations make; with
# BENCH_SAME_STORE=1, B runs on copies of A's: two settings of one build). Then,
# for each of ROUNDS rounds, A then B: a fresh copy of the build's template (SQLite: the
# files copied, synced and read into the page cache; PostgreSQL: CREATE DATABASE ...
# TEMPLATE, then CHECKPOINT), `tessera serve` on it, and one run of each scenario
# (BENCH_SCENARIOS, default "refresh"; also "client_credentials" and "introspect", as
# store-size.sh runs them). Refresh runs use 100,000 tokens of distinct random grants,
# none used twice over all runs. One line per run: req/s, p50, p99, errors, the
# server's CPU time per request, and SQLite: the bytes the server process read and
# wrote per request (/proc/PID/io rchar, wchar); PostgreSQL: the WAL written per
# request (pg_current_wal_lsn, the whole cluster's). Settings and requirements as
# store-size.sh (README.md); wrk runs for BENCH_WRK_DURATION (10s).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$BENCH_DIR/lib.sh"

(($# == 7)) || bench_die "usage: bench/ab.sh BACKEND GRANTS ROUNDS LABEL_A BINARY_A LABEL_B BINARY_B"
BACKEND=$1 GRANTS=$2 ROUNDS=$3
LABELS=("$4" "$6") BINARIES=("$5" "$7")
[[ $BACKEND == sqlite || $BACKEND == postgres ]] || bench_die "BACKEND: sqlite or postgres"
[[ $GRANTS =~ ^[0-9]+$ && $ROUNDS =~ ^[1-9][0-9]*$ ]] || bench_die "GRANTS and ROUNDS: numbers"
for l in "${LABELS[@]}"; do
    [[ $l =~ ^[a-z0-9_]+$ ]] || bench_die "labels: lowercase letters, digits, underscores"
done
[[ ${LABELS[0]} != "${LABELS[1]}" ]] || bench_die "two different labels"
for b in "${BINARIES[@]}"; do [[ -x $b ]] || bench_die "$b is not an executable"; done

: "${BENCH_SUPPLY:=1024}"
: "${BENCH_REFRESH_ISSUED:=today}"
: "${BENCH_SCENARIOS:=refresh}"
# The server's settings, the store, the fill and the wait after a run: store-size.sh's
# own (from its settings' first line to PWHASH, and its functions).
# shellcheck source=/dev/null
source <(sed -n '/^export TESSERA_TOKENS__ACCESS_TOKEN_TTL=/,/^PWHASH=/p;
                 /^new_store()/,/^}/p; /^json_field()/p; /^fill()/,/^}/p;
                 /^prewarm_postgres()/,/^}/p; /^settle()/,/^}/p' "$BENCH_DIR/store-size.sh")
[[ -n ${PWHASH:-} && -n ${SCOPE:-} ]] || bench_die "store-size.sh's settings were not found"

bench_init
if [[ $BACKEND == postgres ]]; then
    bench_pg_available || bench_die "PostgreSQL does not answer at $BENCH_PG_ADMIN_URL"
    bench_on_exit "bench_pg_drop_db tessera_bench_ab_run"
fi

declare -a TEMPLATE APP SVC KEY
declare -a TPL_LABEL=("${LABELS[@]}")
for i in 0 1; do
    if ((i == 1)) && [[ ${BENCH_SAME_STORE:-0} == 1 ]]; then
        TEMPLATE[1]=${TEMPLATE[0]} APP[1]=${APP[0]} SVC[1]=${SVC[0]} KEY[1]=${KEY[0]}
        TPL_LABEL[1]=${LABELS[0]}
        bench_log "${LABELS[1]}: the store of ${LABELS[0]} (BENCH_SAME_STORE=1)"
        break
    fi
    BENCH_BIN=${BINARIES[$i]}
    new_store "$BACKEND" "ab_tpl_${LABELS[$i]}"
    fill "$BACKEND" 1 $((GRANTS + BENCH_SUPPLY)) active
    TEMPLATE[$i]=$STORE_DIR APP[$i]=$APP_AUTH SVC[$i]=$SVC_AUTH KEY[$i]=${TESSERA_MASTER_KEY:-}
    bench_log "${LABELS[$i]}: store of $GRANTS grants filled"
done

TOTAL=$((GRANTS + BENCH_SUPPLY))
PER_RUN=100000
((PER_RUN * ROUNDS * 2 <= TOTAL)) || PER_RUN=$((TOTAL / (ROUNDS * 2)))
shuf -i "1-$TOTAL" -n $((PER_RUN * ROUNDS * 2)) | awk '{ printf "rt%041d\n", $1 }' \
    >"$BENCH_TMP/refresh-all.txt"
shuf -r -i "1-$TOTAL" -n 10000 | awk '{ printf "at%041d\n", $1 }' >"$BENCH_TMP/introspect.txt"

wal_lsn() { bench_psql -Atc "SELECT pg_current_wal_lsn() - '0/0'" "$BENCH_PG_ADMIN_URL"; }
io_bytes() { awk '/^rchar|^wchar/ { printf "%s ", $2 }' "/proc/$1/io"; }
per_request() { echo "scale=1; ($1) / $2" | bc; }

run=0
for ((round = 1; round <= ROUNDS; round++)); do
    for i in 0 1; do
        BENCH_BIN=${BINARIES[$i]} label=${LABELS[$i]}
        STORE_DIR=$BENCH_TMP/run
        rm -rf "$STORE_DIR"
        case $BACKEND in
            sqlite)
                cp -a "${TEMPLATE[$i]}" "$STORE_DIR"
                sync
                cat "$STORE_DIR/tessera.db" >/dev/null
                STORE_URL=sqlite://$STORE_DIR/tessera.db
                ;;
            postgres)
                mkdir -p "$STORE_DIR"
                export TESSERA_MASTER_KEY=${KEY[$i]}
                bench_pg_drop_db tessera_bench_ab_run
                bench_psql -c "CREATE DATABASE tessera_bench_ab_run TEMPLATE tessera_bench_ab_tpl_${TPL_LABEL[$i]}" \
                    -c "CHECKPOINT" "$BENCH_PG_ADMIN_URL" >&2
                STORE_URL=${BENCH_PG_ADMIN_URL%/*}/tessera_bench_ab_run
                ;;
        esac
        sed -n "$((run * PER_RUN + 1)),$(((run + 1) * PER_RUN))p" "$BENCH_TMP/refresh-all.txt" \
            >"$BENCH_TMP/refresh.txt"
        run=$((run + 1))
        bench_start_server "$STORE_DIR" "$STORE_URL" "$BENCH_TMP/server-$label.log"
        for scenario in $BENCH_SCENARIOS; do
            out=$BENCH_TMP/wrk-$label-$round-$scenario.txt
            cpu0=$(bench_cpu_ticks "$BENCH_SERVER_PID")
            case $BACKEND in
                sqlite) read -r rd0 wr0 <<<"$(io_bytes "$BENCH_SERVER_PID")" ;;
                postgres) wal0=$(wal_lsn) ;;
            esac
            case $scenario in
                refresh)
                    BENCH_AUTH=${APP[$i]} bench_wrk "$out" "$BENCH_DIR/lua/refresh.lua" \
                        "$BENCH_SERVER_URL" "$BENCH_TMP/refresh.txt" ;;
                client_credentials)
                    BENCH_AUTH=${SVC[$i]} bench_wrk "$out" \
                        "$BENCH_DIR/lua/client_credentials.lua" "$BENCH_SERVER_URL" ;;
                introspect)
                    BENCH_AUTH=${SVC[$i]} bench_wrk "$out" "$BENCH_DIR/lua/introspect.lua" \
                        "$BENCH_SERVER_URL" "$BENCH_TMP/introspect.txt" ;;
                *) bench_die "unknown scenario $scenario" ;;
            esac
            cpu1=$(bench_cpu_ticks "$BENCH_SERVER_PID")
            read -r rps p50 p99 requests errors _ <<<"$(bench_wrk_parse "$out")"
            ((requests > 0)) || bench_die "no request answered (see $out)"
            cpu=$(per_request "($cpu1 - $cpu0) * 1000000 / $(getconf CLK_TCK)" "$requests")
            case $BACKEND in
                sqlite)
                    read -r rd1 wr1 <<<"$(io_bytes "$BENCH_SERVER_PID")"
                    io="read_B/req $(per_request "$rd1 - $rd0" "$requests") written_B/req $(per_request "$wr1 - $wr0" "$requests")"
                    ;;
                postgres) io="wal_B/req $(per_request "$(wal_lsn) - $wal0" "$requests")" ;;
            esac
            printf '%s round %d %-18s %-10s req/s %9s p50 %7s p99 %7s errors %s cpu_us/req %s %s\n' \
                "$(date +%H:%M:%S)" "$round" "$scenario" "$label" "$rps" "$p50" "$p99" \
                "$errors" "$cpu" "$io"
            settle
        done
        bench_stop_server
    done
done
bench_log "done"
