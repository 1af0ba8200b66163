#!/usr/bin/env bash
# The whole local stack, in the background, with its state in .local/.
#
#   scripts/stack.sh up      set-up, build (debug), database set-up, Temporal dev server, then the
#                            data-platform receiver, the worker, the HTTP API and the codec server
#                            (`starter codec`, for the Web UI); waits until each
#                            is healthy. Whatever already runs is kept.
#   scripts/stack.sh down    stop the API, the worker, the receiver, then the Temporal dev server
#                            (PostgreSQL is a system service and keeps running)
#   scripts/stack.sh status  say what runs
#
# Logs: .local/<name>.log; pids: .local/<name>.pid (names: data-platform, worker, api, codec, temporal).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HEALTH_TIMEOUT="${STACK_HEALTH_TIMEOUT:-60}"

# scheme://host:port of DATA_PLATFORM_URL, and its host.
DP_REST="${DATA_PLATFORM_URL#*://}"
DP_AUTHORITY="${DP_REST%%/*}"
DP_AUTHORITY="${DP_AUTHORITY##*@}"
DP_BASE="${DATA_PLATFORM_URL%%://*}://$DP_AUTHORITY"
DP_HOST="${DP_AUTHORITY%:*}"
DP_HOST="${DP_HOST#[}"
DP_HOST="${DP_HOST%]}"

api_available() {
    [[ -x "$BIN_DIR/starter" ]] && "$BIN_DIR/starter" serve --help >/dev/null 2>&1
}

# wait_healthy NAME DISPLAY CMD...: wait until CMD succeeds while the process of NAME lives.
wait_healthy() {
    local name="$1" display="$2"
    shift 2
    local deadline=$((SECONDS + HEALTH_TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        if ! pid_of "$name" >/dev/null; then
            log_tail "$name"
            die "$display exited during start-up (log: .local/$name.log)"
        fi
        if ((SECONDS >= deadline)); then
            log_tail "$name"
            die "$display is not healthy after ${HEALTH_TIMEOUT}s (log: .local/$name.log)"
        fi
        sleep 0.5
    done
}

# restart_if_stale NAME DISPLAY: stop the process of NAME when its program was rebuilt since it
# started (the kernel then shows its executable as deleted), so `make up` runs the new build.
# A process started from the other PROFILE's build is restarted from this one's too.
restart_if_stale() {
    local name="$1" display="$2" pid exe want
    pid="$(pid_of "$name")" || return 0
    exe="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
    want="$(head -n1 "$LOCAL_DIR/$name.cmd" 2>/dev/null || true)"
    if [[ "$exe" == *" (deleted)" ]]; then
        info "$display (pid $pid) runs an older build; restarting it"
        stop_bg "$name" "$display"
    elif [[ -n "$want" && "$(dirname "$want")" != "$BIN_DIR" ]]; then
        info "$display (pid $pid) runs the $(basename "$(dirname "$want")") build, not $PROFILE; restarting it"
        stop_bg "$name" "$display"
    fi
}

start_receiver() {
    local name=data-platform pid
    if ! is_local_host "$DP_HOST"; then
        info "DATA_PLATFORM_URL points to $DP_AUTHORITY, not this machine: not starting the local receiver"
        return 0
    fi
    restart_if_stale "$name" "data-platform receiver"
    if pid="$(pid_of "$name")"; then
        ok "data-platform receiver already running (pid $pid) at $DATA_PLATFORM_URL"
        return 0
    fi
    if http_ok "$DP_BASE/health"; then
        ok "a data-platform receiver not started by this script answers at $DP_BASE; reusing it"
        return 0
    fi
    [[ -x "$BIN_DIR/data-platform" ]] || die "$BIN_DIR/data-platform is missing (is 'receiver' a workspace member?)"
    info "starting the data-platform receiver at $DATA_PLATFORM_URL"
    start_bg "$name" "$BIN_DIR/data-platform"
    wait_healthy "$name" "the data-platform receiver" http_ok "$DP_BASE/health"
    ok "data-platform receiver healthy (pid $(pid_of "$name")): $DATA_PLATFORM_URL"
}

worker_log_has_panic() {
    local from="$1"
    tail -c "+$((from + 1))" "$LOCAL_DIR/worker.log" 2>/dev/null | grep -qE 'panicked at|panicked:'
}

start_worker() {
    local name=worker pid
    restart_if_stale "$name" worker
    if pid="$(pid_of "$name")"; then
        ok "worker already running (pid $pid)"
        return 0
    fi
    [[ -x "$BIN_DIR/worker" ]] || die "$BIN_DIR/worker is missing"
    info "starting the worker (task queue $TASK_QUEUE, namespace $TEMPORAL_NAMESPACE)"
    ensure_local_dir
    local from
    from="$(stat -c %s "$LOCAL_DIR/$name.log" 2>/dev/null || echo 0)"
    start_bg "$name" "$BIN_DIR/worker"
    # No health endpoint: alive for 2 s and no panic in its log means healthy.
    sleep 2
    if ! pid="$(pid_of "$name")" || worker_log_has_panic "$from"; then
        log_tail "$name"
        die "the worker did not start (log: .local/$name.log)"
    fi
    ok "worker running (pid $pid)"
}

start_api() {
    local name=api pid
    if ! api_available; then
        info "'starter serve' is not available yet: not starting the HTTP API"
        return 0
    fi
    restart_if_stale "$name" "HTTP API"
    if pid="$(pid_of "$name")"; then
        ok "HTTP API already running (pid $pid) at http://$HTTP_ADDR"
        return 0
    fi
    if http_ok "http://$HTTP_ADDR/health"; then
        ok "an HTTP API not started by this script answers at http://$HTTP_ADDR; reusing it"
        return 0
    fi
    info "starting the HTTP API at http://$HTTP_ADDR"
    start_bg "$name" "$BIN_DIR/starter" serve
    wait_healthy "$name" "the HTTP API" http_ok "http://$HTTP_ADDR/health"
    ok "HTTP API healthy (pid $(pid_of "$name")): http://$HTTP_ADDR"
}

# The codec server (CONTRACT §8) for the Web UI: on loopback, without a token (the development
# Web UI cannot send one; `starter codec` refuses CODEC_AUTH=off anywhere else), answering the
# dev server's Web UI origin.
export CODEC_ADDR="${CODEC_ADDR:-127.0.0.1:8081}"
export CODEC_AUTH="${CODEC_AUTH:-off}"
export CODEC_ORIGINS="${CODEC_ORIGINS:-http://127.0.0.1:${TEMPORAL_UI_PORT:-8233},http://localhost:${TEMPORAL_UI_PORT:-8233}}"

codec_available() {
    [[ -x "$BIN_DIR/starter" ]] && "$BIN_DIR/starter" codec --help >/dev/null 2>&1
}

start_codec() {
    local name=codec pid
    if ! codec_available; then
        info "'starter codec' is not available: not starting the codec server"
        return 0
    fi
    restart_if_stale "$name" "codec server"
    if pid="$(pid_of "$name")"; then
        ok "codec server already running (pid $pid) at http://$CODEC_ADDR"
        return 0
    fi
    if http_ok "http://$CODEC_ADDR/health"; then
        ok "a codec server not started by this script answers at http://$CODEC_ADDR; reusing it"
        return 0
    fi
    info "starting the codec server at http://$CODEC_ADDR (CODEC_AUTH=$CODEC_AUTH)"
    start_bg "$name" "$BIN_DIR/starter" codec
    wait_healthy "$name" "the codec server" http_ok "http://$CODEC_ADDR/health"
    ok "codec server healthy (pid $(pid_of "$name")): http://$CODEC_ADDR"
}

up() {
    lock stack
    "$ROOT/scripts/setup.sh"
    info "cargo build --workspace --bins ${CARGO_PROFILE_FLAGS[*]}"
    (cd "$ROOT" && cargo build --workspace --bins "${CARGO_PROFILE_FLAGS[@]}") || die "the build failed"
    [[ -x "$BIN_DIR/starter" ]] || die "$BIN_DIR/starter is missing after the build"
    info "starter db setup (create, migrate, seed the database at $DATABASE_URL)"
    "$BIN_DIR/starter" db setup || die "'starter db setup' failed"
    "$ROOT/scripts/temporal.sh" start
    start_receiver
    start_worker
    start_api
    start_codec
    info "starter schedule (CONTRACT §6 every \${RECONCILE_INTERVAL:-5m}, as ReconcileWorkflow)"
    "$BIN_DIR/starter" schedule >/dev/null || die "'starter schedule' failed"
    ok "the reconciliation schedule: \$TEMPORAL_BIN schedule describe --schedule-id \${RECONCILE_SCHEDULE_ID:-orders-reconcile}"
    ok "stack is up"
    status
}

down() {
    lock stack
    stop_bg codec "codec server"
    stop_bg api "HTTP API"
    stop_bg worker "worker"
    stop_bg data-platform "data-platform receiver"
    "$ROOT/scripts/temporal.sh" stop
    ok "stack is down (PostgreSQL, a system service, keeps running)"
}

# Stops the stack and forgets its state: the dev server's SQLite file (every workflow and its
# history) and the shop's database. For a checkout whose .local/ still holds workflows of code
# from before the 1.0 baseline, which no worker of today can replay. `make up` starts afresh.
reset() {
    down
    lock stack
    rm -f "$LOCAL_DIR"/temporal.db "$LOCAL_DIR"/temporal.db-shm "$LOCAL_DIR"/temporal.db-wal
    ok "forgot the Temporal dev server's state (.local/temporal.db)"
    local names admin db
    names="$(python3 - "$DATABASE_URL" <<'PY'
import sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
print(u.path.lstrip("/") or "orders")
print(urllib.parse.urlunsplit((u.scheme, u.netloc, "/postgres", u.query, "")))
PY
    )" || die "cannot parse DATABASE_URL=$DATABASE_URL"
    db="$(sed -n 1p <<<"$names")"
    admin="$(sed -n 2p <<<"$names")"
    command -v psql >/dev/null 2>&1 || die "psql is needed to drop the database $db"
    psql -X -q -v ON_ERROR_STOP=1 "$admin" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" ||
        die "cannot drop the database $db"
    ok "dropped the shop's database $db; \`make up\` creates, migrates and seeds it again"
}

# status_line NAME DISPLAY HEALTH_URL(optional)
status_line() {
    local name="$1" display="$2" url="${3:-}" pid
    if pid="$(pid_of "$name")"; then
        if [[ -z "$url" ]]; then
            ok "$display: running (pid $pid)"
        elif http_ok "$url"; then
            ok "$display: running (pid $pid), healthy at $url"
        else
            warn "$display: running (pid $pid), NOT healthy at $url"
        fi
    elif [[ -n "$url" ]] && http_ok "$url"; then
        ok "$display: answers at $url (not started by this script)"
    else
        info "$display: not running"
    fi
}

status() {
    if [[ -x "$TEMPORAL_BIN" ]]; then
        "$ROOT/scripts/temporal.sh" status || true
    else
        info "Temporal: CLI not installed yet (scripts/setup.sh)"
    fi
    if command -v python3 >/dev/null 2>&1 && parse_database_url && pg_answers; then
        ok "PostgreSQL: answers at $PG_HOST:$PG_PORT"
    else
        warn "PostgreSQL: does not answer for DATABASE_URL=$DATABASE_URL"
    fi
    if is_local_host "$DP_HOST"; then
        status_line data-platform "data-platform receiver" "$DP_BASE/health"
    else
        info "data-platform: external, $DATA_PLATFORM_URL"
    fi
    status_line worker "worker"
    if api_available; then
        status_line api "HTTP API" "http://$HTTP_ADDR/health"
    else
        info "HTTP API: 'starter serve' not available (yet)"
    fi
    status_line codec "codec server" "http://$CODEC_ADDR/health"
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
reset) reset ;;
*) die "usage: $0 up|down|status|reset" ;;
esac
