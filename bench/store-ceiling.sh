#!/usr/bin/env bash
# What a large store costs refresh rotation on SQLite at the least: the ceiling server
# (crates/server/benches/ceiling.rs) with `--durable --chains N` rotates, for each
# request, one of N refresh token chains drawn at random (its row rewritten in place)
# and inserts an opaque access token's row, in Tessera's group commit (WAL,
# `synchronous = FULL`, one writer thread, a checkpointer thread), and answers
# nothing else: no HTTP parsing beyond hyper's, no client authentication, no token
# minted. Its rotations a second with a million chains against a thousand are the most
# of its empty-store figure that a server keeping its chains in SQLite's B-tree keeps
# on a large store on this machine, whatever else it does.
#
#   bench/store-ceiling.sh [GRANTS] [ROUNDS]      # defaults: 1000000 3
#
# Each round runs the ceiling on a fresh database of BENCH_SMALL (1024) chains, then
# of GRANTS chains, each pinned to the server's core and driven by wrk as bench/ab.sh
# drives Tessera (BENCH_WRK_CONNS connections for BENCH_WRK_DURATION). One line per
# run: req/s, p50 and p99 (ms), errors, the server's CPU time per request (µs) and the
# bytes it wrote per request (/proc/PID/io wchar); then the medians and their ratio.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$BENCH_DIR/lib.sh"

GRANTS=${1:-1000000} ROUNDS=${2:-3}
[[ $GRANTS =~ ^[1-9][0-9]*$ && $ROUNDS =~ ^[1-9][0-9]*$ ]] || bench_die "GRANTS and ROUNDS: numbers"
: "${BENCH_SMALL:=1024}"

bench_init
CEILING_BIN=$(bench_build_bench tessera-server ceiling)

PID=""
stop() {
    [[ -n $PID ]] || return 0
    kill -TERM "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=""
}
bench_on_exit stop

# One run against a fresh database of CHAINS chains; prints its line.
#   run CHAINS
run() {
    local chains=$1 port url dir out i cpu0 cpu1 wr0 wr1 rps p50 p99 requests errors
    # The fill comes first: a second for every 20,000 chains, at most.
    local wait=$((BENCH_START_TIMEOUT + chains / 20000)) start=$SECONDS
    port=$(bench_free_port) url=http://127.0.0.1:$port
    dir=$BENCH_TMP/store-$chains
    rm -rf "$dir"
    taskset -c "$BENCH_SERVER_CPU" "$CEILING_BIN" --listen "127.0.0.1:$port" \
        --durable "$dir" --chains "$chains" >>"$BENCH_TMP/ceiling.log" 2>&1 &
    PID=$!
    for ((i = 0; i < wait * 10; i++)); do
        curl -fsS -o /dev/null --max-time 2 -d x "$url/token" 2>/dev/null && break
        kill -0 "$PID" 2>/dev/null || { cat "$BENCH_TMP/ceiling.log" >&2; bench_die "the ceiling exited"; }
        sleep 0.1
    done
    ((i < wait * 10)) || bench_die "the ceiling did not answer within ${wait}s"
    bench_log "$chains chains: answering after $((SECONDS - start)) s"
    # The fill's pages written back, as bench/ab.sh syncs its copy of the store.
    sync
    sleep 2
    out=$BENCH_TMP/wrk-$chains-$RANDOM.txt
    cpu0=$(bench_cpu_ticks "$PID")
    wr0=$(awk '/^wchar/ { print $2 }' "/proc/$PID/io")
    BENCH_PATH=/token BENCH_BODY=x BENCH_EXPECT_BODY='"access_token":"' \
        BENCH_LUA_DIR=$BENCH_DIR/lua bench_wrk "$out" "$BENCH_DIR/lua/request.lua" "$url"
    cpu1=$(bench_cpu_ticks "$PID")
    wr1=$(awk '/^wchar/ { print $2 }' "/proc/$PID/io")
    stop
    read -r rps p50 p99 requests errors _ <<<"$(bench_wrk_parse "$out")"
    ((requests > 0)) || bench_die "no requests answered"
    printf '%s %s %s %s %s %s\n' "$rps" "$p50" "$p99" "$errors" \
        "$(echo "scale=1; ($cpu1 - $cpu0) * 1000000 / $(getconf CLK_TCK) / $requests" | bc)" \
        "$(echo "scale=0; ($wr1 - $wr0) / $requests" | bc)"
}

declare -a SMALL LARGE
echo "# bench/store-ceiling.sh $GRANTS $ROUNDS: chains req/s p50_ms p99_ms errors cpu_us/req wchar_B/req"
for ((round = 1; round <= ROUNDS; round++)); do
    line=$(run "$BENCH_SMALL")
    echo "$BENCH_SMALL $line"
    SMALL+=("${line%% *}")
    line=$(run "$GRANTS")
    echo "$GRANTS $line"
    LARGE+=("${line%% *}")
done
small=$(bench_median "${SMALL[@]}") large=$(bench_median "${LARGE[@]}")
echo "# medians: $BENCH_SMALL chains $small req/s, $GRANTS chains $large req/s," \
    "ratio $(awk -v l="$large" -v s="$small" 'BEGIN { printf "%.2f", l / s }')"
