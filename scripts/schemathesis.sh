#!/usr/bin/env bash
# The OpenAPI document against the real API: schemathesis (PyPI, installed by
# `scripts/setup.sh schemathesis`) with every check (`--checks all`), once with a customer token
# and once with an admin token, at a fixed seed, with a bounded number of examples per operation.
# schemathesis.toml (checked in) lists per operation the business answers the contract gives a
# valid request; no check is switched off. Then CONTRACT §6 (`starter check`) on what it did.
#
#   scripts/schemathesis.sh          build, start a private stack, run both passes, check
#
# The seed and the examples an operation are schemathesis.toml's; SCHEMATHESIS_ARGS adds
# arguments to both runs (e.g. "--report har" to see every request, "--seed N" to try another).
#
# The stack is its own: a fresh database (dropped and seeded again each run, the demo seed), a
# worker on a task queue of its own, the data-platform receiver and `starter serve` with
# RATE_LIMIT=off, on ports of their own (logs and pids in .local/st-*). It needs the Temporal
# dev server (scripts/temporal.sh start) and PostgreSQL, and stops what it started.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ST_BIN="$LOCAL_DIR/schemathesis/bin/schemathesis"
ST_PORT="${SCHEMATHESIS_PORT:-8380}"
ST_DB="${SCHEMATHESIS_DATABASE:-orders_schemathesis}"

export HTTP_ADDR="127.0.0.1:$ST_PORT"
export DATA_PLATFORM_URL="http://127.0.0.1:$((ST_PORT + 10))/events"
export TASK_QUEUE="schemathesis-$$"
export RATE_LIMIT=off
export API_METRICS_ADDR=off
export WORKER_METRICS_ADDR=off
# DATABASE_URL with its database swapped for ST_DB; ADMIN_URL the server's postgres database.
read -r DATABASE_URL ADMIN_URL < <(python3 - "$DATABASE_URL" "$ST_DB" <<'PY'
import sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
print(urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + sys.argv[2], u.query, "")),
      urllib.parse.urlunsplit((u.scheme, u.netloc, "/postgres", u.query, "")))
PY
)
export DATABASE_URL

cleanup() {
    stop_bg st-api "HTTP API (schemathesis)"
    stop_bg st-worker "worker (schemathesis)"
    stop_bg st-receiver "data-platform receiver (schemathesis)"
}
trap cleanup EXIT

cd "$ROOT"
[[ -x "$ST_BIN" ]] || "$ROOT/scripts/setup.sh" schemathesis
command -v psql >/dev/null 2>&1 || die "psql is needed to make the fresh database $ST_DB"
info "cargo build --bins (starter, worker, data-platform)"
cargo build "${CARGO_PROFILE_FLAGS[@]}" -p starter --bin starter -p worker --bin worker \
    -p receiver --bin data-platform || die "the build failed"

info "a fresh database $ST_DB (the demo seed)"
psql -X -q -v ON_ERROR_STOP=1 "$ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$ST_DB\" WITH (FORCE)" ||
    die "cannot drop the database $ST_DB"
"$BIN_DIR/starter" db setup || die "'starter db setup' failed"

start_bg st-receiver "$BIN_DIR/data-platform"
wait_until 30 "the receiver" http_ok "http://127.0.0.1:$((ST_PORT + 10))/health" ||
    { log_tail st-receiver; die "the receiver did not start"; }
start_bg st-worker "$BIN_DIR/worker"
start_bg st-api "$BIN_DIR/starter" serve
wait_until 60 "the API" http_ok "http://$HTTP_ADDR/health" ||
    { log_tail st-api; log_tail st-worker; die "the API is not healthy"; }
pid_of st-worker >/dev/null || { log_tail st-worker; die "the worker died"; }

curl -fsS "http://$HTTP_ADDR/api/v1/openapi.json" >"$LOCAL_DIR/st-openapi.json" ||
    die "the API serves no OpenAPI document"
CUSTOMER="$("$BIN_DIR/starter" token --user 1)"
ADMIN="$("$BIN_DIR/starter" token --admin)"
read -ra EXTRA_ARGS <<<"${SCHEMATHESIS_ARGS:-}"
started=$SECONDS
failed=0
for who in customer admin; do
    token="$CUSTOMER"
    [[ "$who" == admin ]] && token="$ADMIN"
    info "schemathesis --checks all as the $who (schemathesis.toml: seed, examples, answers)"
    if ! "$ST_BIN" run "http://$HTTP_ADDR/api/v1/openapi.json" \
        --checks all -H "Authorization: Bearer $token" \
        --workers 1 --no-color \
        "${EXTRA_ARGS[@]}"; then
        warn "schemathesis found failures as the $who"
        failed=1
    fi
done
ok "schemathesis wall time $((SECONDS - started)) s"

info "starter check (CONTRACT §6) on $ST_DB"
"$BIN_DIR/starter" check >"$LOCAL_DIR/st-check.json" || {
    cat "$LOCAL_DIR/st-check.json"
    die "starter check found a violation after schemathesis"
}
ok "starter check: no violation"
[[ "$failed" == 0 ]] || die "schemathesis reported failures (see above)"
ok "schemathesis: 0 failures, as the customer and as the admin"
