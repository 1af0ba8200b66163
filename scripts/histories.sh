#!/usr/bin/env bash
# Records the workflow histories that the replay test (tests/replay/) replays: one order down
# each path of OrderWorkflow, run for real on the Temporal dev server and PostgreSQL, its
# history written to tests/histories/<path><HISTORY_SUFFIX>.json. Then replays the folder.
#
#   scripts/histories.sh                                  re-record the current histories
#   HISTORY_SUFFIX=_v2_before_x scripts/histories.sh      record a set kept beside them
#
# Files are overwritten only under the names being recorded. A history from an older version
# of the workflow cannot be recorded again by the current code, so keep those files: they are
# what proves that orders started before a change still replay.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STARTED_TEMPORAL=0
finish() {
    if [[ "$STARTED_TEMPORAL" == 1 && -n "${CI:-}" ]]; then
        "$ROOT/scripts/temporal.sh" stop || true
    fi
}
trap finish EXIT

cd "$ROOT"
"$ROOT/scripts/setup.sh"
if ! "$ROOT/scripts/temporal.sh" status >/dev/null 2>&1; then
    STARTED_TEMPORAL=1
fi
"$ROOT/scripts/temporal.sh" start

export HISTORY_SUFFIX="${HISTORY_SUFFIX:-}"
info "recording into tests/histories/ (suffix '${HISTORY_SUFFIX}')"
# The saga tests are the recorders: each one that drives a recorded path writes its history.
RECORD_HISTORIES=1 cargo test -p saga-tests --test saga -- --nocapture ||
    die "recording failed"

info "replaying every history in tests/histories/"
cargo test -p saga-tests --test replay || die "a recorded history does not replay"
ok "histories recorded: git diff --stat tests/histories/ shows what changed"
