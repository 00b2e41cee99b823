#!/usr/bin/env bash
# Two builds of Tessera side by side on fresh empty stores, their runs alternating:
# client_credentials (JWT access tokens signed with ALG) or introspection of one opaque
# token, as bench/run.sh's cc_es256 / cc_eddsa / introspect scenarios drive them
# (wrk -t1 -c32, server on BENCH_SERVER_CPU, wrk on BENCH_WRK_CPU), with the server's
# CPU time per request, which the machine's noise moves less than req/s.
#
#   bench/ab-http.sh ROUNDS ALG SCENARIO BINARY_A BINARY_B     (SCENARIO: cc or introspect)
#   BENCH_WRK_DURATION=8s bench/ab-http.sh 4 ES256 cc /tmp/tessera-before target/release/tessera
#
# One line per run: round, build, req/s, p99, server CPU µs per request. Every answer is
# checked (an access token; an active introspection); the script stops on any other.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${BENCH_SERVER_CPU:=1}"
: "${BENCH_WRK_CPU:=0}"
. "$BENCH_DIR/lib.sh"

(($# == 5)) || bench_die "usage: bench/ab-http.sh ROUNDS ALG SCENARIO BINARY_A BINARY_B"
ROUNDS=$1 ALG=$2 SCENARIO=$3
BINARIES=("$4" "$5")
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || bench_die "ROUNDS: a number"
[[ $SCENARIO == cc || $SCENARIO == introspect ]] || bench_die "SCENARIO: cc or introspect"
for b in "${BINARIES[@]}"; do [[ -x $b ]] || bench_die "$b is not an executable"; done

json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
basic() { printf 'Basic %s' "$(printf '%s:%s' "$1" "$2" | base64 -w0)"; }

bench_init
export BENCH_LUA_DIR=$BENCH_DIR/lua
declare -a URL PID AUTH BODY
format=jwt path=/token expect='"access_token":"'
[[ $SCENARIO == introspect ]] && format=opaque path=/introspect expect='"active":true'
for i in 0 1; do
    dir=$BENCH_TMP/store-$i url=sqlite://$BENCH_TMP/store-$i/tessera.db BENCH_BIN=${BINARIES[$i]}
    mkdir -p "$dir"
    bench_tessera "$dir" "$url" migrate >/dev/null
    bench_tessera "$dir" "$url" scope create read --description Read >/dev/null
    json=$(bench_tessera "$dir" "$url" client create --name bench --json --scope read \
        --token-format "$format" --grant-type client_credentials)
    AUTH[$i]=$(basic "$(json_field client_id <<<"$json")" "$(json_field client_secret <<<"$json")")
    TESSERA_TOKENS__SIGNING_ALG=$ALG bench_start_server "$dir" "$url" "$BENCH_TMP/server-$i.log"
    URL[$i]=$BENCH_SERVER_URL PID[$i]=$BENCH_SERVER_PID
    bench_on_exit "kill ${PID[$i]} 2>/dev/null || true"
    BENCH_SERVER_PID="" # both run; each is stopped on exit
    BODY[$i]="grant_type=client_credentials&scope=read"
    if [[ $SCENARIO == introspect ]]; then
        token=$(curl -fsS -H "Authorization: ${AUTH[$i]}" -d "${BODY[$i]}" "${URL[$i]}/token" |
            json_field access_token)
        BODY[$i]="token=$token"
    fi
done

for ((r = 1; r <= ROUNDS; r++)); do
    for i in 0 1; do
        before=$(bench_cpu_ticks "${PID[$i]}")
        BENCH_PATH=$path BENCH_BODY=${BODY[$i]} BENCH_AUTH=${AUTH[$i]} BENCH_EXPECT_BODY=$expect \
            bench_wrk "$BENCH_TMP/wrk.txt" "$BENCH_DIR/lua/request.lua" "${URL[$i]}"
        bad=$(awk '/^bad:/ { print $2 }' "$BENCH_TMP/wrk.txt")
        [[ $bad == 0 ]] || bench_die "$bad answers were not what the scenario expects: $(grep -m1 'bad sample' "$BENCH_TMP/wrk.txt")"
        after=$(bench_cpu_ticks "${PID[$i]}")
        rps=$(awk '/Requests\/sec/ { print $2 }' "$BENCH_TMP/wrk.txt")
        n=$(awk '/requests in/ { print $1 }' "$BENCH_TMP/wrk.txt")
        p99=$(awk '$1 == "99%" { print $2 }' "$BENCH_TMP/wrk.txt")
        printf 'round %d %-24s req/s %9.0f p99 %8s cpu_us/req %6.2f\n' "$r" "$(basename "${BINARIES[$i]}")" \
            "$rps" "$p99" "$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$n" \
                'BEGIN { print t * 1e6 / hz / n }')"
        sleep 1
    done
done
