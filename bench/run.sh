#!/usr/bin/env bash
# Tessera side by side with node-oidc-provider (the benchmark peer): the same wrk load
# on each, each server pinned to one core, runs interleaved (Tessera, peer, Tessera,
# ...), medians of BENCH_RUNS runs. Read bench/README-run.md first.
#
#   bench/run.sh                                  # the full run (about 20 minutes)
#   BENCH_DURATION=3s BENCH_RUNS=1 bench/run.sh   # a quick try
#
# Settings (environment, with defaults):
#   BENCH_DURATION=10s     each wrk run (also BENCH_WRK_DURATION of bench/lib.sh)
#   BENCH_RUNS=3           runs per server and scenario; the median is reported
#   BENCH_WARMUP=2s        one warm-up run per server and scenario, not counted
#   BENCH_BACKENDS         "sqlite postgres" (postgres is skipped when it does not
#                          answer at BENCH_PG_ADMIN_URL, postgres://root@127.0.0.1:5432/test)
#   BENCH_SCENARIOS        "cc_es256 cc_eddsa cc_opaque introspect refresh code login bank
#                          extractor"
#   BENCH_SERVER_CPU=1     the core of the server (Tessera or the peer)
#   BENCH_WRK_CPU=0        the core of wrk (and of the Python that mints codes)
#   BENCH_REFRESH_SUPPLY=512  refresh tokens minted before each refresh run
#   BENCH_CODE_MARGIN=1.5  codes minted per run: the warm-up's rate x duration x this
#   BENCH_CEILING=1        measure the ceiling server beside Tessera and the peer (0: no)
# and those of bench/lib.sh (BENCH_BIN, BENCH_REV, BENCH_WRK_CONNS, ...) and
# bench/lib-peer.sh.

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
: "${BENCH_SERVER_CPU:=1}"
: "${BENCH_WRK_CPU:=0}"
if [[ -n ${BENCH_DURATION:-} ]]; then BENCH_WRK_DURATION=$BENCH_DURATION; fi
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"
# shellcheck source=bench/lib-peer.sh
. "$BENCH_DIR/lib-peer.sh"

: "${BENCH_WARMUP:=2s}"
: "${BENCH_BACKENDS:=sqlite postgres}"
: "${BENCH_SCENARIOS:=cc_es256 cc_eddsa cc_opaque introspect refresh code login bank extractor}"
: "${BENCH_REFRESH_SUPPLY:=512}"
: "${BENCH_CODE_MARGIN:=1.5}"
BENCH_DURATION=$BENCH_WRK_DURATION

export BENCH_LUA_DIR=$BENCH_DIR/lua BENCH_WRK_THREADS
# Tessera: warnings and errors only (the peer logs nothing per request either); codes
# live long enough to be minted before a run; no housekeeping during the runs.
export TESSERA_LOG=warn TESSERA_TOKENS__CODE_TTL=10m TESSERA_HOUSEKEEPING__INTERVAL=24h

PEER_AUTH="Basic $(printf 'bench-client:bench-secret-0123456789abcdef0123456789abcdef' | base64 -w0)"
REDIRECT_URI=http://127.0.0.1/cb
# lines: backend|scenario|t_rps|t_p50|t_p99|p_rps|p_p50|p_p99|ratio|c_rps|c_ratio|target|status|base|notes
# (base: the req/s the ratios divide by)
RESULTS=""
FAILED=0

# ---- helpers -----------------------------------------------------------------------

seconds() { # 10s, 2m, 500ms -> whole seconds (at least 1)
    awk -v d="$1" 'BEGIN {
        n = d + 0
        if (d ~ /ms$/) n /= 1000; else if (d ~ /m$/) n *= 60; else if (d ~ /h$/) n *= 3600
        n = int(n + 0.999); print (n < 1 ? 1 : n) }'
}

json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

basic() { printf 'Basic %s' "$(printf '%s:%s' "$1" "$2" | base64 -w0)"; }

# Run wrk (pinned to BENCH_WRK_CPU; bounded by `timeout`) with one of bench/lua's
# scripts; the environment passes on to the script.
#   wrk_run OUT DURATION URL SCRIPT [ARGS...]
wrk_run() {
    local out=$1 duration=$2 url=$3 script=$4
    shift 4
    if ! taskset -c "$BENCH_WRK_CPU" timeout $(($(seconds "$duration") + 60)) \
        wrk -t"$BENCH_WRK_THREADS" -c"$BENCH_WRK_CONNS" -d"$duration" --timeout 10s --latency \
        -s "$BENCH_LUA_DIR/$script" "$url" -- "$@" >"$out" 2>&1; then
        cat "$out" >&2
        bench_die "wrk failed ($out)"
    fi
}

# One line from a wrk output file: `RPS P50 P99 REQUESTS BAD SOCKET_ERRORS`, where BAD
# counts the answers the script's check refused and SOCKET_ERRORS wrk's connect, read,
# write errors and timeouts.
wrk_figures() {
    local parsed bad sock
    parsed=$(bench_wrk_parse "$1") || bench_die "cannot read wrk's output $1"
    bad=$(awk '/^bad: / { print $2 }' "$1")
    sock=$(awk '/Socket errors:/ { gsub(/,/, ""); print $4 + $6 + $8 + $10 }' "$1")
    read -r rps p50 p99 reqs _ <<<"$parsed"
    echo "$rps $p50 $p99 $reqs ${bad:-missing} ${sock:-0}"
}

# Wait (at most 30 s) until process PID uses under 6% of a core over half a second:
# requests still in flight when wrk stopped (a login's Argon2id hash goes on) must
# not run into the next run.
wait_idle() {
    local pid=$1 i a b
    [[ -n $pid ]] || return 0
    a=$(bench_cpu_ticks "$pid") || return 0
    for ((i = 0; i < 60; i++)); do
        sleep 0.5
        b=$(bench_cpu_ticks "$pid") || return 0
        (((b - a) * 100 < 3 * $(getconf CLK_TCK))) && return 0
        a=$b
    done
    bench_log "  pid $pid still busy after 30 s; going on"
}

# ---- Tessera: stores and servers ---------------------------------------------------

STORE_DIR="" STORE_URL="" RUNNING_STORE=""
JWT_AUTH="" OPAQUE_AUTH="" APP_ID="" APP_SECRET="" APP_AUTH="" USER_PASSWORD=""
declare -A STORE_DIRS STORE_URLS STORE_ALGS STORE_VARS

# Create a fresh store LABEL (data dir; SQLite file or a fresh PostgreSQL database)
# with scopes, clients and a user, for tokens signed with ALG. use_store LABEL then
# sets the clients' Authorization headers JWT_AUTH (client_credentials, JWT),
# OPAQUE_AUTH (client_credentials, opaque) and APP_ID / APP_SECRET / APP_AUTH
# (authorization_code and refresh_token, JWT access tokens), and USER_PASSWORD (of
# the user "bench").
new_store() {
    local backend=$1 label=$2 alg=$3 dir=$BENCH_TMP/store-$2 url json
    rm -rf "$dir"
    mkdir -p "$dir"
    case $backend in
        sqlite) url=sqlite://$dir/tessera.db ;;
        postgres)
            bench_pg_create_db "tessera_run_$label"
            url=$BENCH_PG_URL
            ;;
    esac
    STORE_DIRS[$label]=$dir STORE_URLS[$label]=$url STORE_ALGS[$label]=$alg
    bench_tessera "$dir" "$url" migrate >&2
    bench_tessera "$dir" "$url" scope create read --description "Read" >&2
    bench_tessera "$dir" "$url" scope create write --description "Write" >&2
    json=$(bench_tessera "$dir" "$url" client create --name bench-jwt --json --scope "read write" \
        --token-format jwt --grant-type client_credentials)
    JWT_AUTH=$(basic "$(json_field client_id <<<"$json")" "$(json_field client_secret <<<"$json")")
    json=$(bench_tessera "$dir" "$url" client create --name bench-opaque --json \
        --scope "read write" --token-format opaque --grant-type client_credentials)
    OPAQUE_AUTH=$(basic "$(json_field client_id <<<"$json")" "$(json_field client_secret <<<"$json")")
    json=$(bench_tessera "$dir" "$url" client create --name bench-app --json \
        --redirect-uri "$REDIRECT_URI" --scope "read write" --token-format jwt \
        --grant-type authorization_code --grant-type refresh_token)
    APP_ID=$(json_field client_id <<<"$json") APP_SECRET=$(json_field client_secret <<<"$json")
    APP_AUTH=$(basic "$APP_ID" "$APP_SECRET")
    USER_PASSWORD=$(head -c 18 /dev/urandom | base64 -w0 | tr '+/' '-_')
    printf '%s\n' "$USER_PASSWORD" |
        bench_tessera "$dir" "$url" user create --username bench --password-stdin >&2
    STORE_VARS[$label]=$(for v in JWT_AUTH OPAQUE_AUTH APP_ID APP_SECRET APP_AUTH USER_PASSWORD; do
        printf '%s=%q\n' "$v" "${!v}"
    done)
}

# Make the Tessera server of store LABEL the running one (stopping another).
use_store() {
    local label=$1
    [[ $RUNNING_STORE == "$label" ]] && return 0
    eval "${STORE_VARS[$label]}"
    bench_stop_server
    RUNNING_STORE=""
    STORE_DIR=${STORE_DIRS[$label]} STORE_URL=${STORE_URLS[$label]}
    TESSERA_TOKENS__SIGNING_ALG=${STORE_ALGS[$label]} \
        bench_start_server "$STORE_DIR" "$STORE_URL" "$BENCH_TMP/tessera-$label.log"
    RUNNING_STORE=$label
    bench_log "tessera ($label, ${STORE_ALGS[$label]}) at $BENCH_SERVER_URL, pid $BENCH_SERVER_PID"
}

# ---- measuring ---------------------------------------------------------------------

# Note when servers or load generators other than ours run (another benchmark on the
# same two cores): counted in OTHERS, named in the output.
OTHERS=""
others_check() {
    local mine pids
    mine=" $BENCH_SERVER_PID $BENCH_PEER_PID $DEMO_PID "
    pids=$(pgrep -x wrk; pgrep -f 'tessera serve|tessera demo|node server.mjs') || true
    pids=$(for p in $pids; do [[ $mine == *" $p "* ]] || echo "$p"; done)
    if [[ -n $pids ]]; then
        bench_log "  other servers or wrk running:" \
            "$(ps -o pid=,args= -p "$(echo $pids | tr ' ' ,)" | cut -c1-120 | paste -sd';')"
        OTHERS+="$1; "
    fi
}

# The process under load on side t (Tessera: the server, or the demo) or p (the peer).
# c: the ceiling server.
side_pid() {
    case $1 in
        p) echo "$BENCH_PEER_PID" ;;
        c) echo "$CEILING_PID" ;;
        *) echo "${DEMO_PID:-$BENCH_SERVER_PID}" ;;
    esac
}
side_name() { case $1 in p) echo peer ;; c) echo ceiling ;; *) echo tessera ;; esac; }

# Interleaved runs of a scenario: T_RUN (Tessera) and, unless "-", P_RUN (the peer)
# and C_RUN (the ceiling server, started by ceiling_start), each a function taking
# (OUT_FILE, DURATION) that runs wrk. A warm-up run of each first; then T, P, C, T,
# P, C, ... BENCH_RUNS times. Appends a line to RESULTS.
#   measure BACKEND SCENARIO T_RUN P_RUN [NOTES] [RATIO_BASE] [C_RUN] [TARGET]
# RATIO_BASE: a peer req/s figure to compare a Tessera-only scenario (and its
# ceiling) with. TARGET: the ratio issue 7 asks for, as printed.
measure() {
    local backend=$1 scenario=$2 t_run=$3 p_run=$4 notes=${5:-} ratio_base=${6:-}
    local c_run=${7:--} target=${8:--}
    local run side fn out f t_rps=() t_p50=() t_p99=() p_rps=() p_p50=() p_p99=() c_rps=()
    local status=ok bad_notes="" tr tp50 tp99 pr="-" pp50="-" pp99="-" ratio="-" slug
    local cr="-" c_ratio="-" base="-"
    slug=$backend-$(tr -cs 'A-Za-z0-9\n' '_' <<<"$scenario")
    bench_log "== $backend $scenario (load: $(cut -d' ' -f1-3 /proc/loadavg))"
    others_check "$backend $scenario"
    for side in t p c; do
        fn=${side}_run
        [[ ${!fn} == - ]] && continue
        out=$BENCH_TMP/wrk-$slug-$side-warmup.txt
        "${!fn}" "$out" "$BENCH_WARMUP"
        wait_idle "$(side_pid "$side")"
    done
    for ((run = 1; run <= BENCH_RUNS; run++)); do
        for side in t p c; do
            fn=${side}_run
            [[ ${!fn} == - ]] && continue
            out=$BENCH_TMP/wrk-$slug-$side-$run.txt
            "${!fn}" "$out" "$BENCH_DURATION"
            wait_idle "$(side_pid "$side")"
            read -r -a f <<<"$(wrk_figures "$out")"
            bench_log "  $(side_name "$side") run $run:" \
                "${f[0]} req/s, p50 ${f[1]} ms, p99 ${f[2]} ms, ${f[3]} requests," \
                "${f[4]} bad, ${f[5]} socket errors"
            if [[ ${f[3]} == 0 ]]; then
                status=FAIL
                bad_notes+=" [$side run $run: no answer within the run]"
            elif [[ ${f[4]} != 0 || ${f[5]} != 0 ]]; then
                status=FAIL
                bad_notes+=" [$side run $run: ${f[4]} bad, ${f[5]} socket errors$(
                    sed -n 's/^bad sample: \(.\{0,160\}\).*/; first: \1/p' "$out")]"
                sed 's/^/    wrk: /' "$out" >&2
            fi
            case $side in
                t) t_rps+=("${f[0]}") t_p50+=("${f[1]}") t_p99+=("${f[2]}") ;;
                p) p_rps+=("${f[0]}") p_p50+=("${f[1]}") p_p99+=("${f[2]}") ;;
                c) c_rps+=("${f[0]}") ;;
            esac
        done
    done
    tr=$(bench_median "${t_rps[@]}") tp50=$(bench_median "${t_p50[@]}") tp99=$(bench_median "${t_p99[@]}")
    if [[ $p_run != - ]]; then
        pr=$(bench_median "${p_rps[@]}") pp50=$(bench_median "${p_p50[@]}") pp99=$(bench_median "${p_p99[@]}")
        ratio=$(awk -v a="$tr" -v b="$pr" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
    elif [[ -n $ratio_base ]]; then
        ratio=$(awk -v a="$tr" -v b="$ratio_base" 'BEGIN { printf "%.2f*", (b > 0 ? a / b : 0) }')
    fi
    if [[ $c_run != - ]]; then
        cr=$(bench_median "${c_rps[@]}")
        base=${ratio_base:-$pr}
        [[ $base =~ ^[0-9.]+$ ]] || base="-"
        if [[ $base != - ]]; then
            c_ratio=$(awk -v a="$cr" -v b="$base" -v s="${ratio_base:+*}" \
                'BEGIN { printf "%.2f%s", (b > 0 ? a / b : 0), s }')
        fi
    fi
    [[ $status == ok ]] || FAILED=1
    echo "$backend|$scenario|$tr|$tp50|$tp99|$pr|$pp50|$pp99|$ratio|$cr|$c_ratio|$target|$status|$base|$notes$bad_notes" >>"$RESULTS"
}

# The peer's req/s of a scenario already measured on BACKEND (for Tessera-only ratios).
peer_rps() { awk -F'|' -v b="$1" -v s="$2" '$1 == b && $2 == s && $6 != "-" { print $6 }' "$RESULTS"; }

# ---- scenarios ---------------------------------------------------------------------

# 1-3: client_credentials (RFC 6749 §4.4), client_secret_basic, scope read.
t_cc_jwt() {
    BENCH_PATH=/token BENCH_BODY="grant_type=client_credentials&scope=read" BENCH_AUTH=$JWT_AUTH \
        BENCH_EXPECT_BODY='"access_token":"' wrk_run "$1" "$2" "$BENCH_SERVER_URL" request.lua
}
t_cc_opaque() {
    BENCH_PATH=/token BENCH_BODY="grant_type=client_credentials&scope=read" BENCH_AUTH=$OPAQUE_AUTH \
        BENCH_EXPECT_BODY='"access_token":"' wrk_run "$1" "$2" "$BENCH_SERVER_URL" request.lua
}
peer_cc() { # RESOURCE OUT DURATION
    BENCH_PATH=/token BENCH_BODY="grant_type=client_credentials&scope=read&resource=$1" \
        BENCH_AUTH=$PEER_AUTH BENCH_EXPECT_BODY='"access_token":"' \
        wrk_run "$2" "$3" "$BENCH_PEER_URL" request.lua
}
# Check that a token of URL's client_credentials grant is a JWT signed with ALG.
check_jwt_alg() { # URL AUTH BODY ALG
    local token alg
    token=$(fresh_token "$1" /token "$2" "$3")
    alg=$(python3 -c 'import base64, json, sys; h = sys.argv[1].split(".")[0]
print(json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))["alg"])' "$token") ||
        bench_die "$1 did not issue a JWT"
    [[ $alg == "$4" ]] || bench_die "$1 signed with $alg, not $4"
}
p_cc_es256() { peer_cc urn:bench:jwt "$@"; }
p_cc_eddsa() { peer_cc urn:bench:jwt-eddsa "$@"; }
p_cc_opaque() { peer_cc urn:bench:opaque "$@"; }

# 4: introspection (RFC 7662) of an opaque token issued right before the run, by the
# client that holds it.
fresh_token() { # URL PATH AUTH BODY
    curl -fsS --max-time 10 -H "Authorization: $3" -d "$4" "$1$2" | json_field access_token
}
t_introspect() {
    local token
    token=$(fresh_token "$BENCH_SERVER_URL" /token "$OPAQUE_AUTH" "grant_type=client_credentials&scope=read")
    BENCH_PATH=/introspect BENCH_BODY="token=$token" BENCH_AUTH=$OPAQUE_AUTH \
        BENCH_EXPECT_BODY='"active":true' wrk_run "$1" "$2" "$BENCH_SERVER_URL" request.lua
}
p_introspect() {
    local token
    token=$(fresh_token "$BENCH_PEER_URL" /token "$PEER_AUTH" \
        "grant_type=client_credentials&scope=read&resource=urn:bench:opaque")
    BENCH_PATH=/token/introspection BENCH_BODY="token=$token" BENCH_AUTH=$PEER_AUTH \
        BENCH_EXPECT_BODY='"active":true' wrk_run "$1" "$2" "$BENCH_PEER_URL" request.lua
}

# Mint through the real flow (bench/mint.py, pinned with wrk), as user "bench" of the
# running store unless MINT_URL, MINT_USER, MINT_PASSWORD and MINT_SCOPE say otherwise.
mint() { # MODE COUNT OUT
    BENCH_CLIENT_ID=$APP_ID BENCH_CLIENT_SECRET=$APP_SECRET BENCH_REDIRECT_URI=$REDIRECT_URI \
        BENCH_SCOPE=${MINT_SCOPE:-read write} BENCH_USERNAME=${MINT_USER:-bench} \
        BENCH_PASSWORD=${MINT_PASSWORD:-$USER_PASSWORD} taskset -c "$BENCH_WRK_CPU" \
        python3 "$BENCH_DIR/mint.py" "$1" "${MINT_URL:-$BENCH_SERVER_URL}" "$2" "$3" ||
        bench_die "minting $2 $1 failed"
}

# 5: refresh token rotation: a supply of refresh tokens from real code redemptions;
# each answer's new refresh token is used again later in the run.
t_refresh() {
    mint tokens "$BENCH_REFRESH_SUPPLY" "$1.tokens"
    cut -d' ' -f1 "$1.tokens" >"$1.refresh"
    BENCH_AUTH=$APP_AUTH wrk_run "$1" "$2" "$BENCH_SERVER_URL" rotate-refresh.lua "$1.refresh"
}

# 6: authorization code redemption with PKCE; codes minted right before each run.
# The warm-up mints CODE_WARMUP codes (enough for 2 s at 10,000 a second: a warm-up
# that runs out measures the supply, not the server) and its rate sizes the supply of
# the runs. wrk divides by the whole duration even when the codes ran out early: such
# a run is done again with twice as many, and once more with twice as many again.
CODE_WARMUP=20000 CODE_RATE="" CODE_EXHAUSTED=""
t_code() {
    local count=$CODE_WARMUP attempt t0 t1
    if [[ -n $CODE_RATE ]]; then
        count=$(awk -v r="$CODE_RATE" -v d="$(seconds "$2")" -v m="$BENCH_CODE_MARGIN" \
            'BEGIN { print int(r * d * m) + 1000 }')
    fi
    for attempt in 1 2 3; do
        t0=$(date +%s.%N)
        mint codes "$count" "$1.codes"
        t1=$(date +%s.%N)
        bench_log "  minted $count codes in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
        BENCH_AUTH=$APP_AUTH BENCH_REDIRECT_URI=$REDIRECT_URI \
            wrk_run "$1" "$2" "$BENCH_SERVER_URL" redeem-code.lua "$1.codes"
        grep -q '^exhausted: 0$' "$1" && break
        if [[ -z $CODE_RATE ]]; then # the warm-up
            bench_log "  the warm-up's codes ran out: the runs' supply may be too small"
            break
        fi
        if ((attempt < 3)); then
            bench_log "  the codes ran out before the end: again with twice as many"
            wait_idle "$BENCH_SERVER_PID"
            count=$((count * 2))
        else
            CODE_EXHAUSTED=1
        fi
    done
    if [[ -z $CODE_RATE ]]; then
        CODE_RATE=$(awk '/^Requests\/sec:/ { print $2 }' "$1")
    fi
}

# 8: full login (POST /login, no authorization request): CSRF double submit, the
# user's Argon2id hash verified, a session stored; 303 to /account/apps.
LOGIN_CSRF=""
t_login() {
    BENCH_PATH=/login BENCH_COOKIE="tessera_csrf=$LOGIN_CSRF" BENCH_EXPECT=303 \
        BENCH_EXPECT_BODY=/account/apps \
        BENCH_BODY="csrf=$LOGIN_CSRF&username=bench&password=$USER_PASSWORD" \
        wrk_run "$1" "$2" "$BENCH_SERVER_URL" request.lua
}

# ---- the ceiling: the most any server can answer in a scenario on this core --------

# `cargo bench -p tessera-server --bench ceiling` (crates/server/benches/ceiling.rs): an
# HTTP server on Tessera's stack that answers every POST with a fixed JSON body of a
# given size after a given time of CPU, and does nothing else. For each scenario it
# is started pinned to the server's core with the size of Tessera's answer and the
# work no server can skip (a JWT's signature, as the signing benchmark measures it
# right before; for the rest, none), and driven with the same wrk load, interleaved
# with Tessera and the peer (BENCH_CEILING=0 leaves it out). Its req/s over the
# peer's is the highest ratio any server can reach in that scenario on this machine.
# Where Tessera commits before it answers (opaque issuance, refresh rotation) on
# SQLite, the ceiling commits too: a row of an opaque token's size, through the same
# group commit (`--durable`, in a fresh database beside Tessera's), and for refresh the
# rotation of one of BENCH_REFRESH_SUPPLY chains in the same transaction (`--chains`).
CEILING_BIN="" CEILING_PID="" CEILING_URL="" C_AUTH="" C_BODY=""
build_ceiling() {
    CEILING_BIN=$(bench_build_bench tessera-server ceiling)
    bench_on_exit ceiling_stop
}

ceiling_stop() {
    local pid=$CEILING_PID
    [[ -n $pid ]] || return 0
    CEILING_PID=""
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# Start the ceiling server: WORK_US of CPU per request, answers of BODY_BYTES, and with
# DURABLE=1 a commit per request to a fresh SQLite database; with DURABLE=chains=N, of
# a rotation of one of N refresh token chains as well.
#   ceiling_start WORK_US BODY_BYTES [DURABLE]
CEILING_STORES=0
ceiling_start() {
    local port i log=$BENCH_TMP/ceiling.log durable=()
    ceiling_stop
    port=$(bench_free_port)
    CEILING_URL=http://127.0.0.1:$port
    if [[ ${3:-0} != 0 ]]; then
        CEILING_STORES=$((CEILING_STORES + 1))
        durable=(--durable "$BENCH_TMP/ceiling-store-$CEILING_STORES")
        [[ $3 != chains=* ]] || durable+=(--chains "${3#chains=}")
    fi
    bench_log "ceiling server: $1 us of work per request, $2-byte answers${durable[*]:+, durable}${durable[3]:+, rotating one of ${durable[3]} chains}"
    taskset -c "$BENCH_SERVER_CPU" "$CEILING_BIN" --listen "127.0.0.1:$port" \
        --work-us "$1" --body-bytes "$2" "${durable[@]}" >>"$log" 2>&1 &
    CEILING_PID=$!
    for ((i = 0; i < BENCH_START_TIMEOUT * 10; i++)); do
        curl -fsS -o /dev/null --max-time 2 -d x "$CEILING_URL/token" 2>/dev/null && return 0
        kill -0 "$CEILING_PID" 2>/dev/null || { cat "$log" >&2; bench_die "the ceiling server exited"; }
        sleep 0.1
    done
    bench_die "the ceiling server did not answer within ${BENCH_START_TIMEOUT}s"
}

# The scenario's request (C_AUTH, C_BODY) to the ceiling server.
c_post() {
    BENCH_PATH=/token BENCH_BODY=$C_BODY BENCH_AUTH=$C_AUTH BENCH_EXPECT_BODY='"access_token":"' \
        wrk_run "$1" "$2" "$CEILING_URL" request.lua
}

# The size in bytes of the body of URL's answer to a POST.
#   answer_bytes URL PATH AUTH BODY
answer_bytes() {
    local n
    n=$(curl -fsS --max-time 10 -H "Authorization: $3" -d "$4" "$1$2" | wc -c) ||
        bench_die "no answer from $1$2"
    echo "$n"
}

# The ceiling for the next measure: started with WORK_US and the size of Tessera's
# answer to AUTH and BODY at PATH (durable with DURABLE=1), and C_RUN set (to "-"
# with BENCH_CEILING=0).
#   with_ceiling WORK_US PATH AUTH BODY [DURABLE]
C_RUN=-
with_ceiling() {
    C_RUN=-
    [[ ${BENCH_CEILING:-1} == 1 ]] || return 0
    ceiling_start "$1" "$(answer_bytes "$BENCH_SERVER_URL" "$2" "$3" "$4")" "${5:-0}"
    C_AUTH=$3 C_BODY=$4 C_RUN=c_post
}

# 1 where the ceiling commits as Tessera does on BACKEND (SQLite), else 0; with a
# second argument N, chains=N instead of 1 (a rotation of one of N chains per commit).
durable_ceiling() {
    if [[ $1 != sqlite ]]; then echo 0; elif [[ -n ${2:-} ]]; then echo "chains=$2"; else echo 1; fi
}

run_backend() {
    local backend=$1 scenario ms body token
    declare -A made=()
    for scenario in $BENCH_SCENARIOS; do
        case $scenario in
            cc_eddsa) [[ -n ${made[eddsa]:-} ]] || { new_store "$backend" "${backend}_eddsa" EdDSA; made[eddsa]=1; } ;;
            bank | extractor) continue ;;
            *) [[ -n ${made[main]:-} ]] || { new_store "$backend" "${backend}_main" ES256; made[main]=1; } ;;
        esac
    done
    for scenario in $BENCH_SCENARIOS; do
        case $scenario in
            cc_es256)
                use_store "${backend}_main"
                check_jwt_alg "$BENCH_SERVER_URL" "$JWT_AUTH" "grant_type=client_credentials&scope=read" ES256
                check_jwt_alg "$BENCH_PEER_URL" "$PEER_AUTH" \
                    "grant_type=client_credentials&scope=read&resource=urn:bench:jwt" ES256
                measure_signing ES256
                with_ceiling "$SIGNING_US" /token "$JWT_AUTH" "grant_type=client_credentials&scope=read"
                measure "$backend" "client_credentials JWT ES256" t_cc_jwt p_cc_es256 "" "" "$C_RUN" 10
                note_signing
                ;;
            cc_eddsa)
                use_store "${backend}_eddsa"
                check_jwt_alg "$BENCH_SERVER_URL" "$JWT_AUTH" "grant_type=client_credentials&scope=read" EdDSA
                check_jwt_alg "$BENCH_PEER_URL" "$PEER_AUTH" \
                    "grant_type=client_credentials&scope=read&resource=urn:bench:jwt-eddsa" EdDSA
                measure_signing EdDSA
                with_ceiling "$SIGNING_US" /token "$JWT_AUTH" "grant_type=client_credentials&scope=read"
                measure "$backend" "client_credentials JWT EdDSA" t_cc_jwt p_cc_eddsa "" "" "$C_RUN" 15
                note_signing
                ;;
            cc_opaque)
                use_store "${backend}_main"
                with_ceiling 0 /token "$OPAQUE_AUTH" "grant_type=client_credentials&scope=read" \
                    "$(durable_ceiling "$backend")"
                measure "$backend" "client_credentials opaque" t_cc_opaque p_cc_opaque "" "" "$C_RUN" 10
                ;;
            introspect)
                use_store "${backend}_main"
                token=$(fresh_token "$BENCH_SERVER_URL" /token "$OPAQUE_AUTH" "grant_type=client_credentials&scope=read")
                with_ceiling 0 /introspect "$OPAQUE_AUTH" "token=$token"
                measure "$backend" "introspection (opaque, active)" t_introspect p_introspect "" "" \
                    "$C_RUN" 15
                ;;
            refresh)
                use_store "${backend}_main"
                # The answer: a rotation's, with its ES256 access token; its signature
                # is the ceiling's work.
                mint tokens 1 "$BENCH_TMP/refresh-sample"
                body="grant_type=refresh_token&refresh_token=$(cut -d' ' -f1 "$BENCH_TMP/refresh-sample")"
                measure_signing ES256
                with_ceiling "$SIGNING_US" /token "$APP_AUTH" "$body" \
                    "$(durable_ceiling "$backend" "$BENCH_REFRESH_SUPPLY")"
                measure "$backend" "refresh rotation" t_refresh - \
                    "supply $BENCH_REFRESH_SUPPLY, chained; *ratio vs peer cc opaque" \
                    "$(peer_rps "$backend" "client_credentials opaque")" "$C_RUN" 5*
                ;;
            code)
                use_store "${backend}_main"
                CODE_RATE="" CODE_EXHAUSTED=""
                measure "$backend" "authorization_code + PKCE" t_code - "JWT access + refresh token"
                [[ -z $CODE_EXHAUSTED ]] || sed -i '$ s/$/; codes ran out in a run: its rate is too low/' "$RESULTS"
                ;;
            login)
                use_store "${backend}_main"
                LOGIN_CSRF=$(python3 "$BENCH_DIR/mint.py" csrf "$BENCH_SERVER_URL" "$BENCH_TMP/csrf.txt" &&
                    cat "$BENCH_TMP/csrf.txt")
                measure "$backend" "login (Argon2id)" t_login - "queued: one Argon2id run per core"
                note_argon2
                BENCH_WRK_CONNS=1 measure "$backend" "login (Argon2id), 1 connection" t_login - \
                    "p50: one login alone (Argon2id verify + session insert)"
                ;;
            bank | extractor) ;;
            *) bench_die "unknown scenario $scenario" ;;
        esac
    done
    ceiling_stop
    bench_stop_server
    RUNNING_STORE=""
}

# ---- 7: the demo bank, a resource server on crates/resource --------------------------

DEMO_PID="" BANK_URL="" BANK_TOKEN=""
STOP_MARK="--- the benchmark stops it here ---"

stop_demo() {
    local pid=$DEMO_PID i
    [[ -n $pid ]] || return 0
    DEMO_PID=""
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

t_bank_auth() {
    BENCH_METHOD=GET BENCH_PATH=/accounts BENCH_AUTH="Bearer $BANK_TOKEN" \
        BENCH_EXPECT_BODY='"accounts":' wrk_run "$1" "$2" "$BANK_URL" request.lua
}
t_bank_noauth() {
    BENCH_METHOD=GET BENCH_PATH=/accounts BENCH_EXPECT=401 wrk_run "$1" "$2" "$BANK_URL" request.lua
}
t_bank_healthz() {
    BENCH_METHOD=GET BENCH_PATH=/healthz BENCH_EXPECT_BODY=ok wrk_run "$1" "$2" "$BANK_URL" request.lua
}

# `tessera demo` (authorization server, bank and reports app in one process, pinned to
# the server's core, SQLite), a client registered with the CLI, one access token for
# alice through the real flow (audience: the bank), then the bank's GET /accounts with
# it, the same route without a token (401) and the bank's /healthz (no auth).
run_bank() {
    local dir=$BENCH_TMP/demo log=$BENCH_TMP/demo.log auth_port bank_port reports_port i json
    local password t_auth t_health
    mkdir -p "$dir"
    auth_port=$(bench_free_port) bank_port=$(bench_free_port) reports_port=$(bench_free_port)
    # The demo keeps its own master key in its data dir (it reads no TESSERA_* setting).
    (exec env -u TESSERA_MASTER_KEY taskset -c "$BENCH_SERVER_CPU" "$BENCH_BIN" demo \
        --data-dir "$dir" --auth-listen "127.0.0.1:$auth_port" \
        --bank-listen "127.0.0.1:$bank_port" --reports-listen "127.0.0.1:$reports_port") \
        >>"$log" 2>&1 &
    DEMO_PID=$!
    bench_on_exit stop_demo
    for ((i = 0; i < BENCH_START_TIMEOUT * 10; i++)); do
        grep -q '^Press Ctrl-C' "$log" && break
        kill -0 "$DEMO_PID" 2>/dev/null || { cat "$log" >&2; bench_die "tessera demo exited"; }
        sleep 0.1
    done
    grep -q '^Press Ctrl-C' "$log" || { cat "$log" >&2; bench_die "tessera demo did not start"; }
    if grep -q 'not yet subscribed to the revocation feed' "$log"; then
        bench_log "the bank is not on the revocation feed yet: it may introspect tokens"
    fi
    BANK_URL=http://127.0.0.1:$bank_port
    password=$(sed -n 's|^  alice / ||p' "$log")
    json=$(env -u TESSERA_MASTER_KEY "$BENCH_BIN" client create --data-dir "$dir" \
        --name "Bench reader" --redirect-uri "$REDIRECT_URI" --token-format jwt --json \
        --scope "accounts:read transactions:read")
    APP_ID=$(json_field client_id <<<"$json") APP_SECRET=$(json_field client_secret <<<"$json")
    MINT_URL=http://127.0.0.1:$auth_port MINT_USER=alice MINT_PASSWORD=$password \
        MINT_SCOPE="accounts:read transactions:read" mint tokens 1 "$BENCH_TMP/bank-token"
    BANK_TOKEN=$(cut -d' ' -f2 "$BENCH_TMP/bank-token")
    measure demo "bank GET /accounts, JWT" t_bank_auth - "verify (crates/resource) + SQLite read"
    measure demo "bank GET /accounts, no token" t_bank_noauth - "401 invalid_token path"
    measure demo "bank GET /healthz, no auth" t_bank_healthz - "bare route, for comparison"
    if grep -q 'revocation feed is down' "$log"; then
        BANK_NOTE="bank: the revocation feed went down during the runs (it then introspects every token): "
    fi
    t_auth=$(awk -F'|' '$2 == "bank GET /accounts, JWT" { print $3 }' "$RESULTS")
    t_health=$(awk -F'|' '$2 == "bank GET /healthz, no auth" { print $3 }' "$RESULTS")
    if [[ -n $t_auth && -n $t_health ]]; then
        BANK_NOTE+="bank: an authenticated GET /accounts costs $(awk -v a="$t_auth" -v h="$t_health" \
            'BEGIN { printf "%.0f", (1e6 / a - 1e6 / h) }') us of CPU more than /healthz"
        BANK_NOTE+=" (token verification, scope check, one SQLite query, a larger JSON body)"
    fi
    echo "$STOP_MARK" >>"$log"
    stop_demo
    run_bank_bench
}


# `cargo bench -p tessera-resource --bench extractor` (crates/resource/benches): the
# Bearer extractor and Verifier::verify on one ES256 token, cold and cached, per call.
# Run pinned to the server's core after the servers.
EXTRACTOR_BIN=""
build_extractor() { EXTRACTOR_BIN=$(bench_build_bench tessera-resource extractor); }

# `cargo bench -p tessera-demo --bench bank --features bench` (crates/demo/benches): the
# bank's GET /accounts in process, with a bearer token and the same route without auth
# (issue 7: the first at >= 80% of the second). Run pinned to the server's core after
# the demo's HTTP runs.
BANK_BENCH_BIN="" BANK_BENCH_OUT=""
build_bank_bench() { BANK_BENCH_BIN=$(bench_build_bench tessera-demo bank bench); }
run_bank_bench() {
    bench_log "== the demo bank in process (cargo bench -p tessera-demo --bench bank), pinned to cpu $BENCH_SERVER_CPU"
    BANK_BENCH_OUT=$(taskset -c "$BENCH_SERVER_CPU" timeout 300 "$BANK_BENCH_BIN" --bench) ||
        bench_die "the bank benchmark failed"
}

# `cargo bench -p tessera-server --bench password` (crates/server/benches): Argon2id
# verifications back to back, what the core allows with nothing else; run pinned to
# the server's core right after each login scenario (the server idle), and quoted in
# the login row's notes with the logins/s as a share of it.
PASSWORD_BIN=""
build_password() { PASSWORD_BIN=$(bench_build_bench tessera-server password); }

# Append to the notes of the last row of RESULTS: Argon2id alone, and the login rate
# of that row as a share of it.
note_argon2() {
    local out rate login
    bench_log "Argon2id alone (cargo bench -p tessera-server --bench password), pinned to cpu $BENCH_SERVER_CPU"
    out=$(taskset -c "$BENCH_SERVER_CPU" timeout 300 "$PASSWORD_BIN" --bench 64) ||
        bench_die "the password benchmark failed"
    bench_log "  $out"
    rate=$(sed -n 's/.*ms per call, \([0-9.]*\) per second.*/\1/p' <<<"$out")
    login=$(tail -n 1 "$RESULTS" | cut -d'|' -f3)
    [[ -n $rate && $login =~ ^[0-9.]+$ ]] || return 0
    sed -i '$ s/$/'"; Argon2id alone $rate\/s on the core, login at $(
        awk -v l="$login" -v r="$rate" 'BEGIN { printf "%.0f", 100 * l / r }')%/" "$RESULTS"
}

# `cargo bench -p tessera-server --bench signing` (crates/server/benches): what signing
# a client_credentials JWT costs on the core with nothing else (the claims to JSON,
# BASE64URL, the signature) and the signature alone; run pinned to the server's core
# right after each JWT client_credentials scenario (the server idle), and quoted in
# that row's notes as a share of the request's time (1/req/s).
SIGNING_BIN=""
build_signing() { SIGNING_BIN=$(bench_build_bench tessera-server signing); }

# Run the signing benchmark pinned to the server's core (the servers idle) and set
# SIGNING_US to what sign_jwt costs with ALG: the ceiling server's work for a JWT.
#   measure_signing ALG
SIGNING_US=""
measure_signing() {
    local alg=$1 out line
    bench_log "signing alone (cargo bench -p tessera-server --bench signing), pinned to cpu $BENCH_SERVER_CPU"
    out=$(taskset -c "$BENCH_SERVER_CPU" timeout 300 "$SIGNING_BIN" --bench) ||
        bench_die "the signing benchmark failed"
    line=$(grep "^$alg sign_jwt:" <<<"$out") || bench_die "no $alg line in: $out"
    bench_log "  $line"
    SIGNING_US=$(sed -n 's/.*sign_jwt: \([0-9.]*\) us per token.*/\1/p' <<<"$line")
    [[ $SIGNING_US =~ ^[0-9.]+$ ]] || bench_die "cannot read the signing time in: $line"
}

# Append to the notes of the last row of RESULTS: the signing cost measured by
# measure_signing, and the share of that row's time per request it is.
note_signing() {
    local us=$SIGNING_US rps note
    rps=$(tail -n 1 "$RESULTS" | cut -d'|' -f3)
    [[ -n $us && $rps =~ ^[0-9.]+$ ]] || return 0
    note="sign_jwt alone $us us on the core, $(
        awk -v u="$us" -v r="$rps" 'BEGIN { printf "%.0f", u * r / 1e4 }')% of a request"
    # The notes are the last field: "; "-separated when there are some already.
    sed -i '$ { s/|$/|'"$note"'/; t; s/$/; '"$note"'/ }' "$RESULTS"
}

EXTRACTOR_OUT=""
run_extractor() {
    bench_log "== crates/resource: extractor benchmark, pinned to cpu $BENCH_SERVER_CPU"
    EXTRACTOR_OUT=$(taskset -c "$BENCH_SERVER_CPU" timeout 300 "$EXTRACTOR_BIN" --bench) ||
        bench_die "the extractor benchmark failed"
}

# ---- report ------------------------------------------------------------------------

BANK_NOTE=""

report() {
    echo
    echo "== Median of $BENCH_RUNS interleaved runs of wrk -t$BENCH_WRK_THREADS -c$BENCH_WRK_CONNS" \
        "-d$BENCH_DURATION --latency (keep-alive); server on cpu $BENCH_SERVER_CPU, wrk on cpu $BENCH_WRK_CPU"
    printf '%-9s %-32s %9s %8s %8s %9s %8s %8s %7s %9s %7s %6s %-5s %s\n' backend scenario \
        "T req/s" "T p50" "T p99" "P req/s" "P p50" "P p99" ratio "C req/s" "C ratio" target check notes
    awk -F'|' '{
        printf "%-9s %-32s %9s %8s %8s %9s %8s %8s %7s %9s %7s %6s %-5s %s\n", $1, $2, $3, $4, $5,
            $6, $7, $8, $9, $10, $11, $12, $13, $15 }' "$RESULTS"
    echo "(T: Tessera, P: node-oidc-provider $(bench_peer_version); latencies in ms; ratio: T req/s" \
        "over P req/s; * over the peer's client_credentials opaque figure; \"-\": no equivalent;" \
        "C: the ceiling server (crates/server/benches/ceiling.rs: the HTTP exchange with an answer" \
        "of Tessera's size and, for JWTs, the signature's time of CPU, nothing else; for opaque" \
        "issuance and refresh on SQLite, also a row committed per request through the same group" \
        "commit), its ratio the highest any server reaches here; target: issue 7's ratio)"
    # Per request, in microseconds: what the target leaves beside the ceiling's own
    # work (1/(target x base) - 1/C; negative: no server reaches the target here) and
    # what Tessera spends beside it (1/T - 1/C).
    awk -F'|' '$10 ~ /^[0-9.]+$/ && $3 ~ /^[0-9.]+$/ && $14 ~ /^[0-9.]+$/ && $10 > 0 && $3 > 0 {
        t = $12; sub(/\*$/, "", t)
        if (t !~ /^[0-9.]+$/ || t == 0 || $14 == 0) next
        if (!header++) print "Per request beyond the ceiling (us): left at the target, 1/(target x base) - 1/C;" \
            " Tessera, 1/T - 1/C"
        printf "  %-9s %-32s left %8.1f   Tessera %8.1f\n", $1, $2,
            1e6 / (t * $14) - 1e6 / $10, 1e6 / $3 - 1e6 / $10 }' "$RESULTS"
    [[ -z $BANK_NOTE ]] || echo "$BANK_NOTE"
    if [[ -n $BANK_BENCH_OUT ]]; then
        echo
        echo "== the demo bank's GET /accounts in process, with and without auth" \
            "(cargo bench -p tessera-demo --bench bank --features bench, cpu $BENCH_SERVER_CPU)"
        echo "$BANK_BENCH_OUT"
    fi
    if [[ -n $EXTRACTOR_OUT ]]; then
        echo
        echo "== crates/resource per call (cargo bench -p tessera-resource --bench extractor," \
            "cpu $BENCH_SERVER_CPU)"
        echo "$EXTRACTOR_OUT"
    fi
    if [[ -n $OTHERS ]]; then
        echo "Another server or wrk (not this script's) was running at the start of: ${OTHERS%; }"
    else
        echo "No other server or wrk was running at the start of any scenario."
    fi
}

# Warnings and errors in the servers' logs (Tessera logs at warn; the peer logs
# server_error only).
report_logs() {
    local f n
    echo
    echo "== Server logs"
    for f in "$BENCH_TMP"/tessera-*.log "$BENCH_TMP"/demo.log "$BENCH_TMP"/peer.log; do
        [[ -f $f ]] || continue
        n=$(sed "/^$STOP_MARK\$/q" "$f" | grep -c -E 'WARN|ERROR|server_error' || true)
        echo "$(basename "$f"): $n warning/error lines$(grep -q "^$STOP_MARK\$" "$f" &&
            echo " before it was stopped, $(sed "1,/^$STOP_MARK\$/d" "$f" |
                grep -c -E 'WARN|ERROR' || true) while stopping")"
        # Grouped by message: timestamps, and the numbers and statements in them, left out.
        sed "/^$STOP_MARK\$/q" "$f" | grep -E 'WARN|ERROR|server_error' | sed -E 's/\x1b\[[0-9;]*m//g' |
            sed -E -e 's/^[0-9]{4}-[0-9-]+T[0-9:.]+Z +//' -e 's/db\.statement="([^"\\]|\\.)*" //' \
                -e 's/=[0-9][0-9.]*/=N/g' | cut -c1-220 | sort | uniq -c | sort -rn | head -n 8 |
            sed 's/^/    /' || true
    done
}

versions() {
    echo "machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1)," \
        "$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "commit: $BENCH_COMMIT"
    echo "rustc: $(cd "$BENCH_SRC" && rustc --version)"
    echo "node: $(node --version); oidc-provider $(bench_peer_version) (NODE_ENV=production)"
    echo "wrk: $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2)"
    echo "postgres: $(bench_psql -Atc 'SHOW server_version' "$BENCH_PG_ADMIN_URL" 2>/dev/null || echo "not reachable")"
}

main() {
    local start backend
    start=$(date +%s)
    bench_init
    # A directory of its own name, apart from lib.sh's /tmp/tessera-bench.* that other
    # benchmarks (and their clean-ups) use; still removed at exit by lib.sh's trap.
    rmdir "$BENCH_TMP"
    BENCH_TMP=$(mktemp -d /tmp/peer-bench.XXXXXX)
    echo "tessera vs node-oidc-provider, $(date -u +%FT%TZ)"
    echo "command: BENCH_DURATION=$BENCH_DURATION BENCH_RUNS=$BENCH_RUNS BENCH_WARMUP=$BENCH_WARMUP" \
        "BENCH_BACKENDS=\"$BENCH_BACKENDS\" bench/run.sh"
    echo "load before: $(uptime)"
    bench_build
    if [[ " $BENCH_SCENARIOS " == *" extractor "* ]]; then
        build_extractor
    fi
    if [[ " $BENCH_SCENARIOS " == *" bank "* ]]; then
        build_bank_bench
    fi
    if [[ " $BENCH_SCENARIOS " == *" login "* ]]; then
        build_password
    fi
    if [[ " $BENCH_SCENARIOS " =~ \ (cc_es256|cc_eddsa|refresh)\  ]]; then
        build_signing
    fi
    if [[ ${BENCH_CEILING:-1} == 1 && " $BENCH_SCENARIOS " =~ \ (cc_es256|cc_eddsa|cc_opaque|introspect|refresh)\  ]]; then
        build_ceiling
    fi
    versions
    TESSERA_MASTER_KEY=$("$BENCH_BIN" key new-master-key 2>/dev/null || bench_master_key)
    export TESSERA_MASTER_KEY
    RESULTS=$BENCH_TMP/results.txt
    : >"$RESULTS"
    bench_peer_prepare
    bench_peer_start
    bench_log "peer at $BENCH_PEER_URL, pid $BENCH_PEER_PID"
    for backend in $BENCH_BACKENDS; do
        if [[ $backend == postgres ]] && ! bench_pg_available; then
            echo "postgres: skipped, $BENCH_PG_ADMIN_URL does not answer"
            continue
        fi
        run_backend "$backend"
    done
    if [[ " $BENCH_SCENARIOS " == *" bank "* ]]; then
        run_bank
    fi
    bench_peer_stop
    if [[ " $BENCH_SCENARIOS " == *" extractor "* ]]; then
        run_extractor
    fi
    report
    report_logs
    echo
    echo "load after: $(uptime)"
    echo "wall time: $(($(date +%s) - start)) s"
    if ((FAILED)); then
        bench_log "some scenario had answers other than expected: see the check column"
        exit 1
    fi
}

main "$@"
