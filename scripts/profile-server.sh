#!/usr/bin/env bash
# Where the Temporal dev server's CPU goes for the floor and for orders: `perf record` on the
# running server (release stack, as `make bench` leaves it) during a floor-only and an
# orders-only run at concurrency 50 (300 each), then each profile folded with the frames named
# from the server binary's own .gopclntab (scripts/go-fold.py: the CLI's binary is stripped).
# Writes target/bench/profile/{floor,orders}.folded, .packages.txt (self time per Go package)
# and .inclusive.txt (time under the server's layers), and .svg flamegraphs when
# `inferno-flamegraph` is installed (`cargo install inferno`).
#
#   scripts/profile-server.sh
set -euo pipefail
export PROFILE=release
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v perf >/dev/null || apt_install linux-perf
"$ROOT/scripts/stack.sh" up
OUT="$ROOT/target/bench/profile"
mkdir -p "$OUT"
SERVER_PID="$(cat "$LOCAL_DIR/temporal.pid")"
SERVER_BIN="$(readlink -f "/proc/$SERVER_PID/exe")"
LAYERS=(service/frontend service/history service/matching persistence/sql modernc.org/sqlite
    persistence/visibility grpc/internal/transport "[kernel]")

for kind in floor orders; do
    if [[ $kind == floor ]]; then via=(--via none); else via=(--via temporal --no-floor); fi
    info "profiling the server (pid $SERVER_PID) during $kind"
    perf record -F 499 -g -p "$SERVER_PID" -o "$OUT/$kind.perf" >/dev/null 2>&1 &
    perf_pid=$!
    sleep 1
    (cd "$ROOT" && "$BIN_DIR/bench" --orders 300 --concurrency 50 --warmup 20 --rounds 1 \
        "${via[@]}" --no-scale-out --out-dir "$OUT/$kind-run")
    kill -INT "$perf_pid"
    wait "$perf_pid" || true
    perf script -i "$OUT/$kind.perf" -F ip 2>/dev/null |
        python3 "$ROOT/scripts/go-fold.py" "$SERVER_BIN" >"$OUT/$kind.folded"
    python3 "$ROOT/scripts/go-fold.py" --packages <"$OUT/$kind.folded" >"$OUT/$kind.packages.txt"
    python3 "$ROOT/scripts/go-fold.py" --inclusive "${LAYERS[@]}" <"$OUT/$kind.folded" >"$OUT/$kind.inclusive.txt"
    if command -v inferno-flamegraph >/dev/null; then
        inferno-flamegraph --title "Temporal dev server during $kind at concurrency 50 (perf, 499 Hz)" \
            --width 1400 --minwidth 3 <"$OUT/$kind.folded" >"$OUT/$kind.svg"
    fi
    ok "$kind: $OUT/$kind.inclusive.txt"
    cat "$OUT/$kind.inclusive.txt"
done
