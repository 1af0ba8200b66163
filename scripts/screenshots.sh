#!/usr/bin/env bash
# The README's screenshots of the Temporal Web UI, taken by headless Chromium from the running
# stack: one order paid and COMPLETED, and one whose stock sold out between placement and
# payment, so that its compensations ran and it ended CANCELED; the runbook's: a terminated
# workflow.
#
#   scripts/screenshots.sh [OUT_DIR]       default: docs/screenshots
#
# Starts the stack when it is not running (scripts/stack.sh up) and installs Debian's chromium
# when it is missing. Each run makes new customers, products and coupons, so it can run again.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

OUT_DIR="${1:-$ROOT/docs/screenshots}"
UI="http://127.0.0.1:$TEMPORAL_UI_PORT"
# How long Chromium lets the UI's page load and render, in virtual milliseconds.
BUDGET_MS="${SCREENSHOT_BUDGET_MS:-15000}"

CHROMIUM="$(command -v chromium || command -v chromium-browser || true)"
if [[ -z "$CHROMIUM" ]]; then
    apt_install chromium fonts-dejavu-core
    CHROMIUM="$(command -v chromium)"
fi

"$ROOT/scripts/stack.sh" up

STARTER="$BIN_DIR/starter"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# json_field FIELD: FIELD of the JSON object on stdin.
json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# starter ARGS...: the CLI; its JSON answer on stdout, its error shown and fatal.
starter() {
    if ! "$STARTER" "$@" 2>"$TMP/err"; then
        cat "$TMP/err" >&2
        die "starter $* failed"
    fi
}

place() {
    starter order place "$@" --recipient "Kim Minji" --address "12 Teheran-ro, Seoul" \
        --phone "010-1234-5678" | json_field id
}

info "a completed order: a new customer with a coupon buys two lines and pays"
user="$(starter admin user --name "Screenshot customer" --points 500000 | json_field id)"
keyboard="$(starter admin product --name "Mechanical keyboard" --price 89000 --stock 100 | json_field id)"
cable="$(starter admin product --name "USB-C cable" --price 9900 --stock 100 | json_field id)"
coupon="$(starter admin coupon --user "$user" --percent 10 --max-amount 3000 | json_field id)"
completed="$(place --user "$user" --item "$keyboard:1" --item "$cable:2" --coupon "$coupon")"
starter order pay "$completed" >/dev/null
ok "$completed COMPLETED"

info "a compensated order: the last unit sells to someone else between placement and payment"
rival="$(starter admin user --name "Screenshot rival" --points 500000 | json_field id)"
coupon="$(starter admin coupon --user "$user" --fixed 2000 | json_field id)"
scarce="$(starter admin product --name "Limited edition stand" --price 30000 --stock 1 | json_field id)"
compensated="$(place --user "$user" --item "$cable:1" --item "$scarce:1" --coupon "$coupon")"
sniped="$(place --user "$rival" --item "$scarce:1")"
starter order pay "$sniped" >/dev/null
if "$STARTER" order pay "$compensated" >"$TMP/out" 2>"$TMP/err"; then
    die "paying $compensated succeeded; it should have found the stock sold out"
fi
grep -q INSUFFICIENT_STOCK "$TMP/err" || {
    cat "$TMP/err" >&2
    die "paying $compensated failed, but not with INSUFFICIENT_STOCK"
}
status="$(starter order show "$compensated" | json_field status)"
[[ "$status" == CANCELED ]] || die "$compensated is $status, not CANCELED"
ok "$compensated CANCELED after its compensations"

# shot NAME ORDER_ID: the order's workflow page in the Web UI, as a PNG in OUT_DIR.
shot() {
    local name="$1" id="$2" profile out
    profile="$(mktemp -d)"
    out="$OUT_DIR/$name.png"
    mkdir -p "$OUT_DIR"
    info "screenshot of $UI/namespaces/$TEMPORAL_NAMESPACE/workflows/$id -> ${out#"$ROOT"/}"
    # A fresh profile each time; no network but the UI's (no updates, sync or QUIC probes).
    "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --disable-default-apps --hide-scrollbars --force-device-scale-factor=1 \
        --user-data-dir="$profile" --window-size=1600,1200 \
        --virtual-time-budget="$BUDGET_MS" --screenshot="$out" \
        "$UI/namespaces/$TEMPORAL_NAMESPACE/workflows/$id" >"$TMP/chromium.log" 2>&1 || {
        cat "$TMP/chromium.log" >&2
        rm -rf "$profile"
        die "chromium could not take $out"
    }
    rm -rf "$profile"
    [[ -s "$out" ]] || die "chromium wrote no $out"
    ok "$out"
}

shot order-completed "$completed"
shot order-compensated "$compensated"

# The runbook's (docs/OPERATIONS.md): a terminated workflow, then repaired as the runbook says.
# (A running workflow's page long-polls its history, so Chromium's virtual time never runs out
# on it: the runbook describes those pages in words.)
info "a terminated workflow: an order waiting for payment, terminated, then repaired"
terminated="$(place --user "$user" --item "$cable:1")"
"$TEMPORAL_BIN" workflow terminate --address "$TEMPORAL_ADDRESS" \
    --namespace "$TEMPORAL_NAMESPACE" --workflow-id "$terminated" \
    --reason "screenshot: an operator's terminate" >/dev/null
shot ops-terminated "$terminated"
starter repair "$terminated" --apply >/dev/null
ok "$terminated repaired (CANCELED, REPAIRED)"

# The storefront's (CONTRACT §7), taken by the browser of its tests (tests/storefront) in its
# screenshot mode: the checkout with a coupon chosen, and the receipt of the paid order.
"$ROOT/scripts/setup.sh" browser
info "storefront screenshots (tests/storefront, happy path) -> ${OUT_DIR#"$ROOT"/}"
(cd "$ROOT" && STOREFRONT_SCREENSHOTS="$OUT_DIR" cargo test -q -p saga-tests --test storefront -- \
    --exact happy_path_with_a_coupon) || die "the storefront's screenshots failed"
ok "$OUT_DIR/storefront-checkout.png, $OUT_DIR/storefront-receipt.png"
