#!/usr/bin/env bash
# The tail at concurrency 50, candidate by candidate: for each setting below, the stack is
# restarted on the release build with it (the dev server too, for the server's settings) and
# the same load runs: the floor and orders through the Temporal client, 300 each at
# concurrency 50 after 20 warm-up ones. Results: target/bench/tail/<candidate>.json, and a
# table on standard output. BENCHMARKS.md's "The tail at concurrency 50" comes from it.
#
#   scripts/bench-tail.sh [candidate...]       default: all of them, in this order
#
# Candidates (NAME=settings):
#   sdk            the SDK's polling (5 workflow polls, 1 of them on the shared queue) and the
#                  server's 4 partitions per task queue
#   partitions-1   one partition per task queue (TEMPORAL_TASK_QUEUE_PARTITIONS=1)
#   pollers-10     10 workflow polls, half on the shared queue (WORKFLOW_POLLERS=10,
#                  WORKFLOW_NONSTICKY_RATIO=0.5)
#   both           both of the above
# The stack is left running with the last candidate's settings; `make down && make up` brings
# back the defaults.
set -euo pipefail
export PROFILE=release
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

declare -A CANDIDATES=(
    [sdk]="TEMPORAL_TASK_QUEUE_PARTITIONS=4 WORKFLOW_POLLERS= WORKFLOW_NONSTICKY_RATIO="
    [partitions-1]="TEMPORAL_TASK_QUEUE_PARTITIONS=1 WORKFLOW_POLLERS= WORKFLOW_NONSTICKY_RATIO="
    [pollers-10]="TEMPORAL_TASK_QUEUE_PARTITIONS=4 WORKFLOW_POLLERS=10 WORKFLOW_NONSTICKY_RATIO=0.5"
    [both]="TEMPORAL_TASK_QUEUE_PARTITIONS=1 WORKFLOW_POLLERS=10 WORKFLOW_NONSTICKY_RATIO=0.5"
)
ORDER=(sdk partitions-1 pollers-10 both)
(($# > 0)) && ORDER=("$@")

OUT="$ROOT/target/bench/tail"
mkdir -p "$OUT"
for name in "${ORDER[@]}"; do
    [[ -n "${CANDIDATES[$name]:-}" ]] || die "unknown candidate '$name' (known: ${!CANDIDATES[*]})"
    info "candidate $name: ${CANDIDATES[$name]}"
    "$ROOT/scripts/stack.sh" down
    # shellcheck disable=SC2086 # the candidate is a list of NAME=value words
    env ${CANDIDATES[$name]} "$ROOT/scripts/stack.sh" up
    # shellcheck disable=SC2086
    (cd "$ROOT" && env ${CANDIDATES[$name]} "$BIN_DIR/bench" --orders 300 --concurrency 50 \
        --warmup 20 --via temporal --no-scale-out --out-dir "$OUT/$name")
    cp "$OUT/$name/results.json" "$OUT/$name.json"
done

python3 - "$OUT" "${ORDER[@]}" <<'EOF'
import json, sys
out, names = sys.argv[1], sys.argv[2:]
print(f"{'candidate':<14} {'kind':<10} {'orders/s':>8} {'place p50':>9} {'place p99':>9} {'×':>5} {'pay p50':>8} {'pay p99':>8} {'×':>5} {'CPU ms':>7}")
for n in names:
    for r in json.load(open(f"{out}/{n}.json"))["runs"]:
        pl, pa = r["placement_ms"], r["payment_ms"]
        cpu = sum(r["cpu_seconds_per_order"].values()) * 1000
        print(f"{n:<14} {r['kind']:<10.10} {r['throughput']:>8.1f} {pl['p50']:>9.1f} {pl['p99']:>9.1f} "
              f"{pl['p99']/pl['p50']:>5.1f} {pa['p50']:>8.1f} {pa['p99']:>8.1f} {pa['p99']/pa['p50']:>5.1f} {cpu:>7.1f}")
EOF
