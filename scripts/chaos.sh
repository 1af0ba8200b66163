#!/usr/bin/env bash
# The reliability and security scenarios (`make chaos`): set-up, build, then the `chaos` binary.
#
#   scripts/chaos.sh               all eight scenarios at full size (8: the whole crash matrix)
#   scripts/chaos.sh --quick       the short form (`make test` runs it)
#   scripts/chaos.sh --only 2,4    some of them; --seed N for other generated requests
#   scripts/chaos.sh --only 8 --write-doc   the crash matrix, also into docs/RELIABILITY.md
#
# Nothing here touches the shared stack: `chaos` starts a Temporal dev server and a PostgreSQL
# cluster of its own under .local/chaos/ (logs in .local/chaos/logs/, the figures in
# .local/chaos/report.json), and stops everything it started, also on failure or Ctrl-C.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

finish() {
    local rc=$? t=$SECONDS
    if [[ "$rc" == 0 ]]; then
        ok "chaos passed; wall time $((t / 60))m $((t % 60))s"
    else
        warn "chaos FAILED (exit $rc); wall time $((t / 60))m $((t % 60))s"
    fi
}
trap finish EXIT

cd "$ROOT"
# One run at a time: they share .local/chaos/.
lock chaos
"$ROOT/scripts/setup.sh" tools
"$ROOT/scripts/setup.sh" temporal-cli
# The server binaries for the private cluster (initdb, pg_ctl). Without them `chaos` says so,
# falls back to DATABASE_URL with databases of its own, and skips the PostgreSQL restart.
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    apt_install postgresql postgresql-client ||
        warn "no PostgreSQL server binaries: the PostgreSQL restart scenario will be skipped"
fi

info "cargo build ${CARGO_PROFILE_FLAGS[*]} --bin worker --bin starter --bin chaos"
cargo build "${CARGO_PROFILE_FLAGS[@]}" --bin worker --bin starter --bin chaos ||
    die "the build failed"
# The crash-point matrix (scenario 8) runs a worker that aborts at a named point: a binary of
# its own name (worker-crashpoints), so it never replaces the worker above (or `make up`'s),
# built in a cargo run of its own so that the feature reaches no other binary.
info "cargo build ${CARGO_PROFILE_FLAGS[*]} -p worker --features crashpoints --bin worker-crashpoints"
cargo build "${CARGO_PROFILE_FLAGS[@]}" -p worker --features crashpoints --bin worker-crashpoints ||
    die "the build of the crashpoints worker failed"

info "chaos $*"
# fd 9 (the lock) is not handed down: a leftover child must never keep the next run waiting.
"$BIN_DIR/chaos" --root "$ROOT" "$@" 9>&-
