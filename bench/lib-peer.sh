# shellcheck shell=bash
# node-oidc-provider as a benchmark peer (/work/shared/peers/oidc-provider): install it
# once (node_modules cached under bench/.peer-cache/), start it pinned to the server's
# core, stop it. Source after bench/lib.sh and call bench_init first.
#
# Settings (environment, with defaults):
#   BENCH_PEER_SRC        the peer's sources (../shared/peers/oidc-provider beside the
#                         repository, or /work/shared/peers/oidc-provider)
#   BENCH_PEER_CACHE      where installed node_modules are kept between runs, one
#                         directory per package-lock.json hash (bench/.peer-cache)
#   BENCH_NPM_TIMEOUT=600 seconds npm ci may take

: "${BENCH_PEER_CACHE:=$BENCH_LIB_DIR/.peer-cache}"
: "${BENCH_NPM_TIMEOUT:=600}"
if [[ -z ${BENCH_PEER_SRC:-} ]]; then
    for BENCH_PEER_SRC in "$BENCH_SRC/../shared/peers/oidc-provider" \
        /work/shared/peers/oidc-provider; do
        [[ -f $BENCH_PEER_SRC/server.mjs ]] && break
    done
fi

BENCH_PEER_DIR=""
BENCH_PEER_PID=""
BENCH_PEER_URL=""

# The peer's oidc-provider version, from its package.json.
bench_peer_version() {
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["dependencies"]["oidc-provider"])' \
        "$BENCH_PEER_SRC/package.json"
}

# Copy the peer to $BENCH_TMP/peer and give it node_modules: from the cache when the
# package-lock.json is the same, else by `npm ci` (then cached). Sets BENCH_PEER_DIR.
bench_peer_prepare() {
    local key cache staging
    [[ -f $BENCH_PEER_SRC/server.mjs ]] || bench_die "no peer at $BENCH_PEER_SRC (BENCH_PEER_SRC)"
    command -v node >/dev/null || bench_die "node is missing"
    BENCH_PEER_DIR=$BENCH_TMP/peer
    rm -rf "$BENCH_PEER_DIR"
    mkdir -p "$BENCH_PEER_DIR"
    cp "$BENCH_PEER_SRC"/server.mjs "$BENCH_PEER_SRC"/package.json \
        "$BENCH_PEER_SRC"/package-lock.json "$BENCH_PEER_DIR"/
    chmod -R u+w "$BENCH_PEER_DIR"
    key=$(cat "$BENCH_PEER_SRC/package-lock.json" "$(command -v node)" | sha256sum | cut -c1-16)
    cache=$BENCH_PEER_CACHE/$key
    if [[ -d $cache/node_modules ]]; then
        bench_log "peer: node_modules from $cache"
        cp -a "$cache/node_modules" "$BENCH_PEER_DIR/"
        return
    fi
    bench_log "peer: npm ci (cached afterwards in $cache)"
    (cd "$BENCH_PEER_DIR" && timeout "$BENCH_NPM_TIMEOUT" npm ci --no-audit --no-fund) >&2 ||
        bench_die "npm ci failed in $BENCH_PEER_DIR"
    mkdir -p "$BENCH_PEER_CACHE"
    staging=$(mktemp -d "$BENCH_PEER_CACHE/.staging.XXXXXX")
    cp -a "$BENCH_PEER_DIR/node_modules" "$staging/"
    # Another run may have filled the same cache meanwhile: keep the first.
    mv -T "$staging" "$cache" 2>/dev/null || rm -rf "$staging"
}

# Start the peer on a free port, pinned to BENCH_SERVER_CPU, and wait until its
# discovery document answers. Sets BENCH_PEER_PID and BENCH_PEER_URL.
#   bench_peer_start [LOG_FILE]
bench_peer_start() {
    local log=${1:-$BENCH_TMP/peer.log} port i
    [[ -n $BENCH_PEER_DIR ]] || bench_die "bench_peer_prepare first"
    [[ -z $BENCH_PEER_PID ]] || bench_die "the peer is already running"
    port=$(bench_free_port)
    BENCH_PEER_URL=http://127.0.0.1:$port
    (cd "$BENCH_PEER_DIR" && NODE_ENV=production PORT=$port \
        exec taskset -c "$BENCH_SERVER_CPU" node server.mjs) >>"$log" 2>&1 &
    BENCH_PEER_PID=$!
    bench_on_exit bench_peer_stop
    for ((i = 0; i < BENCH_START_TIMEOUT * 10; i++)); do
        if curl -fsS -o /dev/null --max-time 2 \
            "$BENCH_PEER_URL/.well-known/openid-configuration" 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$BENCH_PEER_PID" 2>/dev/null; then
            BENCH_PEER_PID=""
            tail -n 20 "$log" >&2
            bench_die "the peer exited at start (log: $log)"
        fi
        sleep 0.1
    done
    tail -n 20 "$log" >&2
    bench_die "the peer did not answer within ${BENCH_START_TIMEOUT}s (log: $log)"
}

# Stop the peer: SIGTERM, then SIGKILL after 10 s.
bench_peer_stop() {
    local pid=$BENCH_PEER_PID i
    [[ -n $pid ]] || return 0
    BENCH_PEER_PID=""
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
