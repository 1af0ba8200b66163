#!/usr/bin/env bash
# Set-up, then every check: formatting, clippy, and the whole test suite.
#
#   scripts/test.sh        set-up, Temporal dev server, fmt, clippy, cargo test --workspace,
#                          schemathesis against the OpenAPI document (scripts/schemathesis.sh)
#   scripts/test.sh lint   fmt and clippy only
#
# The tests need only the Temporal dev server and PostgreSQL (TEMPORAL_ADDRESS, DATABASE_URL);
# they start their own worker and data-platform receiver in-process. The dev server is left
# running for the next run (it is the same one `make up` uses), except under CI when this
# script started it.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODE="${1:-all}"
case "$MODE" in
all | lint) ;;
*) die "usage: $0 [lint]" ;;
esac

STARTED_TEMPORAL=0
finish() {
    local rc=$?
    if [[ "$STARTED_TEMPORAL" == 1 && -n "${CI:-}" ]]; then
        "$ROOT/scripts/temporal.sh" stop || true
    fi
    local t=$SECONDS
    if [[ "$rc" == 0 ]]; then
        ok "all checks passed; wall time $((t / 60))m $((t % 60))s"
    else
        warn "FAILED (exit $rc); wall time $((t / 60))m $((t % 60))s"
    fi
}
trap finish EXIT

cd "$ROOT"
if [[ "$MODE" == all ]]; then
    "$ROOT/scripts/setup.sh"
    if ! "$ROOT/scripts/temporal.sh" status >/dev/null 2>&1; then
        STARTED_TEMPORAL=1
    fi
    "$ROOT/scripts/temporal.sh" start
else
    "$ROOT/scripts/setup.sh" tools
fi

info "cargo fmt --all -- --check"
cargo fmt --all -- --check || die "formatting differs: run 'cargo fmt --all'"

info "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings || die "clippy found problems"

"$ROOT/scripts/compose-check.sh"

if [[ "$MODE" == all ]]; then
    info "cargo test --workspace (TEMPORAL_ADDRESS=$TEMPORAL_ADDRESS, DATABASE_URL=$DATABASE_URL)"
    cargo test --workspace --no-fail-fast || die "tests failed"
    "$ROOT/scripts/schemathesis.sh" || die "schemathesis found the OpenAPI document untrue (see above)"
    "$ROOT/scripts/chaos.sh" --quick || die "chaos --quick found a problem (see above)"
fi
