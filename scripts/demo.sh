#!/usr/bin/env bash
# Starts the stack (scripts/stack.sh up), then places and pays one sample order through the
# `starter` CLI, and prints the order and its Temporal Web UI link.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

"$ROOT/scripts/stack.sh" up

STARTER="$BIN_DIR/starter"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# starter ARGS...: run the CLI with its stdout in $TMP/out and its stderr in $TMP/err.
starter() {
    "$STARTER" "$@" >"$TMP/out" 2>"$TMP/err"
}

# fail WHAT: show what the CLI said and stop.
fail() {
    {
        echo "----- starter stderr -----"
        cat "$TMP/err"
        if [[ -s "$TMP/out" ]]; then
            echo "----- starter stdout -----"
            cat "$TMP/out"
        fi
        echo "-----"
    } >&2
    die "$1"
}

json_field() {
    python3 -c 'import json, sys
v = json.load(sys.stdin).get(sys.argv[1])
print("" if v is None else v)' "$1" <"$TMP/out"
}

PLACE=(order place --user 1 --item 1:2 --item 2:1
    --recipient "Kim Minji" --address "12 Teheran-ro, Seoul" --phone "010-1234-5678")

echo
info "placing an order: starter $(printf '%q ' "${PLACE[@]}")--coupon 1"
if ! starter "${PLACE[@]}" --coupon 1; then
    if grep -q COUPON_INVALID "$TMP/err"; then
        # Coupon 1 is used up by an earlier run of this demo.
        warn "coupon 1 cannot be used ($(head -n1 "$TMP/err")); placing the order without it"
        starter "${PLACE[@]}" || fail "placing the order failed"
    else
        fail "placing the order failed"
    fi
fi
ID="$(json_field id 2>/dev/null)" || fail "'starter order place' did not print an order as JSON"
[[ -n "$ID" ]] || fail "'starter order place' printed no order id"
ok "order $ID placed: status $(json_field status), total $(json_field total)"

info "paying: starter order pay $ID"
starter order pay "$ID" || fail "paying order $ID failed"
ok "order $ID paid: status $(json_field status)"

# The data platform is told right after COMPLETED; show the order once it has been.
deadline=$((SECONDS + 15))
while :; do
    starter order show "$ID" || fail "'starter order show $ID' failed"
    if [[ -n "$(json_field platform_notified_at)" ]] || ((SECONDS >= deadline)); then
        break
    fi
    sleep 0.5
done

echo
info "order $ID:"
python3 -m json.tool <"$TMP/out"
if [[ -z "$(json_field platform_notified_at)" ]]; then
    warn "the data platform has not been notified yet (the workflow keeps retrying)"
fi
echo
echo "Web UI: http://127.0.0.1:$TEMPORAL_UI_PORT/namespaces/$TEMPORAL_NAMESPACE/workflows/$ID"
