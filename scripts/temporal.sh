#!/usr/bin/env bash
# The Temporal dev server (SQLite in .local/temporal.db, log .local/temporal.log, pid
# .local/temporal.pid), listening at TEMPORAL_ADDRESS, Web UI on TEMPORAL_UI_PORT (8233).
#
#   scripts/temporal.sh start    start it in the background, or reuse a server that already
#                                answers at TEMPORAL_ADDRESS; then wait until it is SERVING and
#                                make sure the namespace and search attributes exist
#   scripts/temporal.sh stop     stop the server this script started
#   scripts/temporal.sh status   say whether it answers
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NAME=temporal
START_TIMEOUT="${TEMPORAL_START_TIMEOUT:-60}"
# The workflow's custom search attributes (name=type), from search-attributes.txt.
mapfile -t SEARCH_ATTRIBUTES < <(search_attributes)
((${#SEARCH_ATTRIBUTES[@]})) || die "no search attributes in $ROOT/search-attributes.txt"

tcli() {
    "$TEMPORAL_BIN" "$@" --address "$TEMPORAL_HOSTPORT" --command-timeout 10s
}

serving() {
    tcli operator cluster health 2>/dev/null | grep -q SERVING
}

ensure_cli() {
    if [[ ! -x "$TEMPORAL_BIN" ]]; then
        "$ROOT/scripts/setup.sh" temporal-cli
    fi
}

ensure_namespace() {
    local ns="$TEMPORAL_NAMESPACE"
    if tcli operator namespace describe --namespace "$ns" >/dev/null 2>&1; then
        return 0
    fi
    info "creating namespace $ns"
    local out
    if ! out="$(tcli operator namespace create --namespace "$ns" 2>&1)"; then
        grep -qi 'already' <<<"$out" || die "cannot create namespace $ns: $out"
    fi
    wait_until 30 "namespace $ns" tcli operator namespace describe --namespace "$ns" ||
        die "namespace $ns does not appear"
}

# Create the missing search attributes; 1 (with the reason in SA_ERROR) when one cannot be made.
try_search_attributes() {
    local sa name type out existing
    SA_ERROR=""
    if ! existing="$(tcli operator search-attribute list --namespace "$TEMPORAL_NAMESPACE" 2>&1)"; then
        SA_ERROR="$existing"
        return 1
    fi
    for sa in "${SEARCH_ATTRIBUTES[@]}"; do
        name="${sa%%=*}" type="${sa#*=}"
        if grep -qw -- "$name" <<<"$existing"; then
            continue
        fi
        info "creating search attribute $name ($type) in namespace $TEMPORAL_NAMESPACE"
        if ! out="$(tcli operator search-attribute create --namespace "$TEMPORAL_NAMESPACE" \
            --name "$name" --type "$type" 2>&1)"; then
            if ! grep -qi 'already exists' <<<"$out"; then
                SA_ERROR="$out"
                return 1
            fi
        fi
    done
}

ensure_search_attributes() {
    # A namespace that was just created takes a few seconds to be known everywhere.
    local deadline=$((SECONDS + 30))
    until try_search_attributes; do
        if ((SECONDS >= deadline)) || ! grep -qi 'not found' <<<"$SA_ERROR"; then
            die "cannot create the search attributes in namespace $TEMPORAL_NAMESPACE: $SA_ERROR"
        fi
        sleep 1
    done
}

start() {
    lock temporal
    ensure_cli
    local pid
    if pid="$(pid_of "$NAME")"; then
        local ours
        ours="$(cat "$LOCAL_DIR/$NAME.addr" 2>/dev/null || true)"
        if [[ -n "$ours" && "$ours" != "$TEMPORAL_HOSTPORT" ]]; then
            die "the dev server started by this script (pid $pid) listens at $ours, not at TEMPORAL_ADDRESS=$TEMPORAL_HOSTPORT: run '$0 stop' first"
        fi
    fi
    if serving; then
        if pid="$(pid_of "$NAME")"; then
            ok "Temporal dev server already running (pid $pid) at $TEMPORAL_HOSTPORT"
        else
            ok "a Temporal server already answers at $TEMPORAL_HOSTPORT; reusing it"
        fi
    else
        if pid="$(pid_of "$NAME")"; then
            info "Temporal dev server (pid $pid) is starting; waiting for it"
        else
            is_local_host "$TEMPORAL_HOST" ||
                die "no Temporal server answers at $TEMPORAL_HOSTPORT, which is not on this machine: start it there or change TEMPORAL_ADDRESS"
            if tcp_open "$TEMPORAL_HOST" "$TEMPORAL_PORT"; then
                die "something that is not a healthy Temporal server listens on $TEMPORAL_HOSTPORT; stop it or change TEMPORAL_ADDRESS"
            fi
            ensure_local_dir
            local ns_args=() sa_args=() sa
            if [[ "$TEMPORAL_NAMESPACE" != default ]]; then
                ns_args=(--namespace "$TEMPORAL_NAMESPACE")
            fi
            # The dev server has one history shard, which reads its transfer queue (the tasks
            # that hand a workflow task to matching after a start or an activity's completion)
            # at most 20 times a second by default: at one order at a time that held each such
            # workflow task back 35-45 ms. 100 reads a second cut an order's latency by two
            # thirds; 1000 cost the server more CPU per order at concurrency 50 than it saved
            # (BENCHMARKS.md). A real cluster spreads the default over its many shards.
            local dc_args=(--dynamic-config-value "history.transferProcessorMaxPollRPS=${TEMPORAL_TRANSFER_POLL_RPS:-100}")
            # One partition per task queue, not the server's 4: with 4, a new workflow's first
            # task that lands in a partition no poll is waiting on sits in that partition's
            # backlog, and at concurrency 50 one placement in a hundred waited 3-5 s while the
            # median waited 0.3 s. With one, p99 is 1.1-1.2 × p50 at the same throughput
            # (BENCHMARKS.md, "The tail"). One partition carries this machine's load many
            # times over; a cluster sizes its own (docs/SCALING.md).
            # The CLI's dev server re-reads the cluster metadata from SQLite for every search
            # attribute it validates (30 starts with two attributes: 90 reads; with this false:
            # 1). This stack registers its attributes when the server starts, so the cache
            # never misses one (BENCHMARKS.md, "The gap").
            dc_args+=(--dynamic-config-value "system.forceSearchAttributesCacheRefreshOnRead=${TEMPORAL_SA_REFRESH_ON_READ:-false}")
            local partitions="${TEMPORAL_TASK_QUEUE_PARTITIONS:-1}"
            dc_args+=(--dynamic-config-value "matching.numTaskqueueReadPartitions=$partitions"
                --dynamic-config-value "matching.numTaskqueueWritePartitions=$partitions")
            # The server's own Prometheus metrics (persistence requests by operation, which
            # `make bench` reads per order): TEMPORAL_PORT + 2233 (9466) unless set; `off`.
            local metrics_port="${TEMPORAL_METRICS_PORT:-$((TEMPORAL_PORT + 2233))}" metrics_args=()
            [[ "$metrics_port" == off ]] || metrics_args=(--metrics-port "$metrics_port")
            for sa in "${SEARCH_ATTRIBUTES[@]}"; do
                sa_args+=(--search-attribute "$sa")
            done
            info "starting the Temporal dev server at $TEMPORAL_HOSTPORT (UI port $TEMPORAL_UI_PORT, db .local/temporal.db)"
            start_bg "$NAME" "$TEMPORAL_BIN" server start-dev \
                --ip "$TEMPORAL_HOST" --port "$TEMPORAL_PORT" --ui-port "$TEMPORAL_UI_PORT" \
                --db-filename "$LOCAL_DIR/temporal.db" \
                --sqlite-pragma journal_mode=WAL --sqlite-pragma synchronous=OFF \
                "${dc_args[@]}" "${sa_args[@]}" "${ns_args[@]}" \
                --ui-codec-endpoint "http://${CODEC_ADDR:-127.0.0.1:8081}" \
                "${metrics_args[@]}" \
                --ui-disable-news-fetch --log-level warn
            pid="$(cat "$LOCAL_DIR/$NAME.pid")"
            echo "$TEMPORAL_HOSTPORT" >"$LOCAL_DIR/$NAME.addr"
        fi
        local deadline=$((SECONDS + START_TIMEOUT))
        until serving; do
            if ! kill -0 "$pid" 2>/dev/null; then
                log_tail "$NAME"
                die "the Temporal dev server exited during start-up (log: .local/$NAME.log)"
            fi
            if ((SECONDS >= deadline)); then
                log_tail "$NAME"
                die "the Temporal dev server is not SERVING after ${START_TIMEOUT}s (log: .local/$NAME.log)"
            fi
            sleep 0.5
        done
        ok "Temporal dev server SERVING at $TEMPORAL_HOSTPORT (pid $pid)"
    fi
    ensure_namespace
    ensure_search_attributes
    ok "Temporal Web UI: http://127.0.0.1:$TEMPORAL_UI_PORT/namespaces/$TEMPORAL_NAMESPACE/workflows"
}

stop() {
    if pid_of "$NAME" >/dev/null; then
        stop_bg "$NAME" "Temporal dev server"
    elif [[ -x "$TEMPORAL_BIN" ]] && serving; then
        rm -f "$LOCAL_DIR/$NAME.pid"
        info "a Temporal server not started by this script answers at $TEMPORAL_HOSTPORT; leaving it running"
    else
        stop_bg "$NAME" "Temporal dev server"
    fi
}

status() {
    local pid=""
    pid="$(pid_of "$NAME")" || true
    if [[ -x "$TEMPORAL_BIN" ]] && serving; then
        local who="not started by this script"
        [[ -z "$pid" ]] || who="pid $pid"
        ok "Temporal: SERVING at $TEMPORAL_HOSTPORT ($who), UI http://127.0.0.1:$TEMPORAL_UI_PORT"
    elif [[ -n "$pid" ]]; then
        warn "Temporal: process $pid alive but not SERVING at $TEMPORAL_HOSTPORT"
        return 1
    else
        info "Temporal: not running at $TEMPORAL_HOSTPORT"
        return 1
    fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
*) die "usage: $0 start|stop|status" ;;
esac
