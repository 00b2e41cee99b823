# shellcheck shell=bash
# Shared functions of Tessera's benchmarks: build, start and stop a server on a fresh
# data dir, fresh PostgreSQL databases, wrk runs parsed into req/s, p50 and p99, the
# median of several runs, and a cleanup trap that stops everything that was started.
#
# Source it from a bash script (`. "$(dirname "$0")/lib.sh"`), then call bench_init.
# Everything listens on 127.0.0.1 only; every wait is bounded.
#
# Settings (environment, with defaults):
#   BENCH_BIN             a tessera binary to use instead of building one (not
#                         TESSERA_BIN: Tessera reads every TESSERA_* variable as config)
#   BENCH_SRC             the source tree to build (the repository this file is in)
#   BENCH_REV             build this git revision instead of the working tree: it is
#                         exported (git archive) to $BENCH_BUILD_DIR/src and built with
#                         the target dir $BENCH_BUILD_DIR/target, away from others' edits
#   BENCH_BUILD_DIR       (/tmp/tessera-bench-build)
#   BENCH_TARGET_DIR      cargo's target dir for the working tree (default: cargo's)
#   BENCH_SERVER_CPU=0    the core the server (and tessera gc) is pinned to
#   BENCH_WRK_CPU=1       the core wrk is pinned to
#   BENCH_WRK_THREADS=1 BENCH_WRK_CONNS=32 BENCH_WRK_DURATION=10s
#   BENCH_RUNS=3          runs per figure; the median of each metric is reported
#   BENCH_START_TIMEOUT=60  seconds to wait for a server to answer
#   BENCH_PG_ADMIN_URL    a PostgreSQL database to create/drop bench databases from
#                         (postgres://root@127.0.0.1:5432/test)
#   BENCH_KEEP=1          keep the temporary directory (logs, wrk output) at exit
#   BENCH_LOCK=/tmp/tessera-benchmarks.lock  benchmarks that use this file run one at a
#                         time (they pin to the same cores): bench_init waits for the
#                         lock, at most BENCH_LOCK_WAIT seconds (3600)

BENCH_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${BENCH_SRC:=$(cd "$BENCH_LIB_DIR/.." && pwd)}"
: "${BENCH_SERVER_CPU:=0}"
: "${BENCH_WRK_CPU:=1}"
: "${BENCH_WRK_THREADS:=1}"
: "${BENCH_WRK_CONNS:=32}"
: "${BENCH_WRK_DURATION:=10s}"
: "${BENCH_RUNS:=3}"
: "${BENCH_START_TIMEOUT:=60}"
: "${BENCH_PG_ADMIN_URL:=postgres://root@127.0.0.1:5432/test}"

BENCH_TMP=""
BENCH_CLEANUP=()      # shell commands run at exit, last registered first
BENCH_SERVER_PID=""
BENCH_SERVER_URL=""

bench_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
bench_die() { bench_log "error: $*"; exit 1; }

# Wait for the benchmark lock, create the temporary directory and install the
# cleanup trap.
bench_init() {
    local lock=${BENCH_LOCK:-/tmp/tessera-benchmarks.lock} wait=${BENCH_LOCK_WAIT:-3600}
    exec {BENCH_LOCK_FD}>>"$lock"
    if ! flock -n "$BENCH_LOCK_FD"; then
        bench_log "another benchmark holds $lock: waiting (at most ${wait}s)"
        flock -w "$wait" "$BENCH_LOCK_FD" || bench_die "$lock still held after ${wait}s"
    fi
    BENCH_TMP=$(mktemp -d /tmp/tessera-bench.XXXXXX)
    trap bench_cleanup EXIT
    trap 'bench_log "interrupted"; exit 130' INT TERM
    command -v wrk >/dev/null || bench_die "wrk is missing (apt-get install -y wrk)"
    command -v curl >/dev/null || bench_die "curl is missing"
    command -v taskset >/dev/null || bench_die "taskset is missing (util-linux)"
}

# Run a command at exit (commands run last registered first).
bench_on_exit() { BENCH_CLEANUP+=("$*"); }

bench_cleanup() {
    local rc=$? i
    trap - EXIT INT TERM
    trap '' PIPE  # a reader of our output may be gone: clean up all the same
    bench_wrk_stop
    if [[ -f $BENCH_TMP/background-wrk.pids ]]; then
        while read -r BENCH_WRK_PID; do
            [[ $(ps -o comm= -p "$BENCH_WRK_PID" 2>/dev/null) == wrk ]] && bench_wrk_stop
        done <"$BENCH_TMP/background-wrk.pids"
        BENCH_WRK_PID=""
    fi
    bench_stop_server
    for ((i = ${#BENCH_CLEANUP[@]} - 1; i >= 0; i--)); do
        eval "${BENCH_CLEANUP[i]}" || bench_log "cleanup failed: ${BENCH_CLEANUP[i]}"
    done
    BENCH_CLEANUP=()
    if [[ -n $BENCH_TMP && -d $BENCH_TMP ]]; then
        if [[ ${BENCH_KEEP:-} == 1 ]]; then
            bench_log "kept $BENCH_TMP"
        else
            rm -rf "$BENCH_TMP"
        fi
    fi
    exit "$rc"
}

# Build the release binary (unless BENCH_BIN is given) and set BENCH_BIN, and
# BENCH_COMMIT to what was built; BENCH_BUILT_SRC and BENCH_BUILT_TARGET to the source
# tree and cargo target dir (with BENCH_BIN: the working tree's). Another build in the
# same target dir holds cargo's lock: this then waits for it.
bench_build() {
    BENCH_BUILT_SRC=$BENCH_SRC
    BENCH_BUILT_TARGET=${BENCH_TARGET_DIR:-${CARGO_TARGET_DIR:-$BENCH_SRC/target}}
    if [[ -n ${BENCH_BIN:-} ]]; then
        [[ -x $BENCH_BIN ]] || bench_die "BENCH_BIN=$BENCH_BIN is not executable"
        : "${BENCH_COMMIT:=unknown (BENCH_BIN given)}"
        bench_log "using $BENCH_BIN"
        return
    fi
    local src=$BENCH_SRC target=${BENCH_TARGET_DIR:-}
    if [[ -n ${BENCH_REV:-} ]]; then
        local build=${BENCH_BUILD_DIR:-/tmp/tessera-bench-build}
        BENCH_COMMIT=$(git -C "$BENCH_SRC" rev-parse --verify "$BENCH_REV^{commit}") ||
            bench_die "unknown revision $BENCH_REV"
        src=$build/src target=$build/target
        rm -rf "$src"
        mkdir -p "$src"
        git -C "$BENCH_SRC" archive "$BENCH_COMMIT" | tar -x -C "$src"
    else
        BENCH_COMMIT="$(git -C "$BENCH_SRC" rev-parse HEAD 2>/dev/null || echo unknown)"
        if [[ -n $(git -C "$BENCH_SRC" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
            BENCH_COMMIT+=" + uncommitted changes"
        fi
    fi
    bench_log "cargo build --release -p tessera-cli in $src (may wait for cargo's lock)"
    target=${target:-${CARGO_TARGET_DIR:-$src/target}}
    (cd "$src" && CARGO_TARGET_DIR=$target cargo build --release -p tessera-cli) >&2 ||
        bench_die "release build failed"
    BENCH_BIN=$target/release/tessera
    BENCH_BUILT_SRC=$src BENCH_BUILT_TARGET=$target
}

# The executable of benchmark NAME of package PKG (`cargo bench --no-run`), built in
# the source tree and target dir of the binary (bench_build's BENCH_BUILT_SRC and
# BENCH_BUILT_TARGET; without bench_build, the working tree and its target dir).
#   bench_build_bench PKG NAME [FEATURES]
bench_build_bench() {
    local pkg=$1 name=$2 features=${3:-} out exe
    local src=${BENCH_BUILT_SRC:-$BENCH_SRC}
    local target=${BENCH_BUILT_TARGET:-${BENCH_TARGET_DIR:-${CARGO_TARGET_DIR:-$src/target}}}
    bench_log "cargo bench --no-run -p $pkg --bench $name${features:+ --features $features} in $src"
    out=$(cd "$src" && CARGO_TARGET_DIR=$target \
        cargo bench --no-run -p "$pkg" --bench "$name" ${features:+--features "$features"} \
        --message-format=json) || bench_die "building the $name benchmark failed"
    exe=$(python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[1] and m.get("executable"):
        print(m["executable"])' "$name" <<<"$out")
    [[ -x $exe ]] || bench_die "no executable for the $name benchmark"
    echo "$exe"
}

# A free TCP port on 127.0.0.1 (the kernel's choice; free when this returns).
bench_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# 32 random bytes, base64: a master key for one run.
bench_master_key() { head -c32 /dev/urandom | base64 -w0; }

# ---- PostgreSQL ------------------------------------------------------------------

bench_psql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

# Whether the admin database answers.
bench_pg_available() { bench_psql -Atc 'SELECT 1' "$BENCH_PG_ADMIN_URL" >/dev/null 2>&1; }

# Create a fresh database, dropped at exit (or earlier with bench_pg_drop_db), and set
# BENCH_PG_URL to its URL. NAME: lowercase letters, digits and underscores. (Not in a
# command substitution: the drop at exit is registered in the calling shell.)
bench_pg_create_db() {
    local name=$1
    [[ $name =~ ^[a-z_][a-z0-9_]*$ ]] || bench_die "bad database name $name"
    bench_pg_drop_db "$name"
    bench_psql -c "CREATE DATABASE $name" "$BENCH_PG_ADMIN_URL" >&2 || bench_die "createdb $name"
    bench_on_exit "bench_pg_drop_db $name"
    BENCH_PG_URL=${BENCH_PG_ADMIN_URL%/*}/$name
}

bench_pg_drop_db() {
    PGOPTIONS="-c client_min_messages=warning" bench_psql -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" "$BENCH_PG_ADMIN_URL" >&2
}

# ---- the server ------------------------------------------------------------------

# Run a tessera admin command against DATA_DIR and DATABASE_URL:
#   bench_tessera DATA_DIR DATABASE_URL client create --name x ...
# TESSERA_MASTER_KEY and other TESSERA_* settings are taken from the environment.
bench_tessera() {
    local data_dir=$1 db_url=$2
    shift 2
    "$BENCH_BIN" "$1" --data-dir "$data_dir" --database-url "$db_url" "${@:2}"
}

# Start `tessera serve` on a free port, pinned to BENCH_SERVER_CPU, and wait until the
# metadata endpoint answers. Sets BENCH_SERVER_PID and BENCH_SERVER_URL.
#   bench_start_server DATA_DIR DATABASE_URL [LOG_FILE]
bench_start_server() {
    local data_dir=$1 db_url=$2 log=${3:-$BENCH_TMP/server.log} port i
    [[ -z $BENCH_SERVER_PID ]] || bench_die "a server is already running"
    port=$(bench_free_port)
    BENCH_SERVER_URL=http://127.0.0.1:$port
    taskset -c "$BENCH_SERVER_CPU" "$BENCH_BIN" serve --listen "127.0.0.1:$port" \
        --issuer "$BENCH_SERVER_URL" --data-dir "$data_dir" --database-url "$db_url" \
        >>"$log" 2>&1 &
    BENCH_SERVER_PID=$!
    for ((i = 0; i < BENCH_START_TIMEOUT * 10; i++)); do
        if curl -fsS -o /dev/null --max-time 2 \
            "$BENCH_SERVER_URL/.well-known/oauth-authorization-server" 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$BENCH_SERVER_PID" 2>/dev/null; then
            BENCH_SERVER_PID=""
            tail -n 20 "$log" >&2
            bench_die "the server exited at start (log: $log)"
        fi
        sleep 0.1
    done
    tail -n 20 "$log" >&2
    bench_die "the server did not answer within ${BENCH_START_TIMEOUT}s (log: $log)"
}

# Stop the server started by bench_start_server: SIGTERM, then SIGKILL after 30 s.
bench_stop_server() {
    local pid=$BENCH_SERVER_PID i
    [[ -n $pid ]] || return 0
    BENCH_SERVER_PID=""
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        bench_log "server $pid did not stop on SIGTERM: SIGKILL"
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null || true
}

# Wait (at most MAX_SECONDS, default 300) until the server has used less than 5% of a
# core over a second: requests queued when wrk stopped are done by then.
bench_wait_idle() {
    local max=${1:-300} i before after
    [[ -n $BENCH_SERVER_PID ]] || return 0
    for ((i = 0; i < max; i++)); do
        before=$(bench_cpu_ticks "$BENCH_SERVER_PID") || return 0
        sleep 1
        after=$(bench_cpu_ticks "$BENCH_SERVER_PID") || return 0
        (((after - before) * 100 < 5 * $(getconf CLK_TCK))) && return 0
    done
    bench_log "the server was still busy after ${max}s"
}

# User + system CPU time of a process, in clock ticks.
bench_cpu_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null
}

# ---- wrk -------------------------------------------------------------------------

# Run wrk, pinned to BENCH_WRK_CPU, with a Lua script against the server, keeping its
# output in OUT_FILE; extra arguments go to the script (wrk ... -- ARGS).
#   bench_wrk OUT_FILE SCRIPT.lua URL [ARGS...]
# The environment passes on to the script (os.getenv).
bench_wrk() {
    local out=$1 script=$2 url=$3
    shift 3
    BENCH_WRK_THREADS=$BENCH_WRK_THREADS taskset -c "$BENCH_WRK_CPU" wrk -t"$BENCH_WRK_THREADS" -c"$BENCH_WRK_CONNS" \
        -d"$BENCH_WRK_DURATION" --timeout 10s --latency -s "$script" "$url" -- "$@" \
        >"$out" 2>&1 || {
        cat "$out" >&2
        bench_die "wrk failed"
    }
}

# Start wrk in the background (pinned, as bench_wrk) for at most DURATION; sets
# BENCH_WRK_PID. Stop it early with bench_wrk_stop: wrk prints its figures on SIGINT.
#   bench_wrk_start OUT_FILE SCRIPT.lua URL DURATION [ARGS...]
BENCH_WRK_PID=""
bench_wrk_start() {
    local out=$1 script=$2 url=$3 duration=$4
    shift 4
    [[ -z $BENCH_WRK_PID ]] || bench_die "a background wrk is already running"
    BENCH_WRK_THREADS=$BENCH_WRK_THREADS taskset -c "$BENCH_WRK_CPU" wrk -t"$BENCH_WRK_THREADS" \
        -c"$BENCH_WRK_CONNS" -d"$duration" --timeout 10s --latency -s "$script" "$url" -- "$@" \
        >"$out" 2>&1 &
    BENCH_WRK_PID=$!
    # Also on file: a wrk started in a subshell is then stopped at exit as well.
    echo "$BENCH_WRK_PID" >>"$BENCH_TMP/background-wrk.pids"
}

# Stop the background wrk (SIGINT, then SIGKILL after 10 s) and wait for it.
bench_wrk_stop() {
    local pid=$BENCH_WRK_PID i
    [[ -n $pid ]] || return 0
    BENCH_WRK_PID=""
    kill -INT "$pid" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
}

# Parse a wrk output file into one line: `RPS P50_MS P99_MS REQUESTS ERRORS MAX_MS`,
# where ERRORS counts non-2xx/3xx responses and socket errors.
bench_wrk_parse() {
    awk '
        function ms(v) {
            if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
            if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
            if (v ~ /m$/)  return substr(v, 1, length(v) - 1) * 60000
            if (v ~ /s$/)  return substr(v, 1, length(v) - 1) * 1000
            return v + 0
        }
        /^ +Latency +[0-9]/ { max = ms($4) }
        /^ +50% / { p50 = ms($2) }
        /^ +99% / { p99 = ms($2) }
        /requests in/ { reqs = $1 }
        /^Requests\/sec:/ { rps = $2 }
        /Non-2xx or 3xx responses:/ { errors += $NF }
        /Socket errors:/ {
            gsub(/,/, ""); errors += $4 + $6 + $8 + $10
        }
        END {
            if (rps == "") exit 1
            printf "%.0f %.3f %.3f %d %d %.3f\n", rps, p50, p99, reqs, errors, max
        }' "$1"
}

# The median of the numbers given as arguments (the lower middle one for an even count).
bench_median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# Run FUNC RUN_INDEX for run indexes 1..BENCH_RUNS; each call prints one line
# `RPS P50 P99 REQUESTS ERRORS MAX [MORE...]` (bench_wrk_parse's format, with
# optional further numbers). Prints bench_median_lines of those lines.
bench_median_runs() {
    local fn=$1 run line lines=$BENCH_TMP/runs.txt
    : >"$lines"
    for ((run = 1; run <= BENCH_RUNS; run++)); do
        line=$("$fn" "$run") || bench_die "$fn run $run failed"
        bench_log_run "$run" "$line"
        echo "$line" >>"$lines"
    done
    bench_median_lines "$lines"
}

bench_log_run() {
    local f
    read -r -a f <<<"$2"
    bench_log "  run $1: ${f[0]} req/s, p50 ${f[1]} ms, p99 ${f[2]} ms, max ${f[5]} ms," \
        "${f[3]} requests, ${f[4]} errors${f[6]:+, more: ${f[*]:6}}"
}

# Lines `RPS P50 P99 REQUESTS ERRORS MAX [MORE...]` in FILE, one per run, into one:
# the median of each of RPS, P50 and P99 (taken separately), the sums of REQUESTS and
# ERRORS, the largest MAX, and the median of each further column.
bench_median_lines() {
    awk '
        function median(col,   n, i, j, t, v) {
            n = 0
            for (i = 1; i <= NR; i++) if ((i, col) in cell) v[++n] = cell[i, col]
            for (i = 2; i <= n; i++)
                for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
            return v[int((n + 1) / 2)]
        }
        { for (i = 1; i <= NF; i++) cell[NR, i] = $i + 0; if (NF > nf) nf = NF }
        END {
            if (NR == 0) exit 1
            for (i = 1; i <= NR; i++) { reqs += cell[i, 4]; errors += cell[i, 5]
                                        if (cell[i, 6] > max) max = cell[i, 6] }
            line = median(1) " " median(2) " " median(3) " " reqs " " errors " " max
            for (c = 7; c <= nf; c++) line = line " " median(c)
            print line
        }' "$1"
}
