#!/usr/bin/env bash
# The benchmark: the stack from an optimised build (PROFILE=release scripts/stack.sh up), then
# `bench` with the arguments given (default: 200 orders per run at concurrency 1, 10 and 50,
# through the HTTP API and the Temporal client, beside the orchestration floor). Results go to
# target/bench/results.json and target/bench/chart.png.
#
#   scripts/bench.sh [bench arguments...]      e.g. scripts/bench.sh --orders 500 --concurrency 50
#
# The stack keeps running afterwards on the release build; `make up` brings back the debug one.
set -euo pipefail
export PROFILE=release
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The chart's labels need a font.
[[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]] || apt_install fonts-dejavu-core

"$ROOT/scripts/stack.sh" up
cd "$ROOT"
info "bench $*"
"$BIN_DIR/bench" "$@"
