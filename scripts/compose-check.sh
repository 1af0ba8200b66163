#!/usr/bin/env bash
# Checks docker-compose.yml without a Docker engine: Compose itself validates the file
# (`docker-compose config -q`, Debian's docker-compose, installed with apt when missing), then
# the resolved configuration is checked against what the README promises: every service, the
# settings of CONTRACT §3 on the worker and the API, health checks, the one-shot set-up services
# before the worker and the API, and workers that can be scaled.
#
#   scripts/compose-check.sh [FILE]      default: docker-compose.yml at the repository root
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FILE="${1:-$ROOT/docker-compose.yml}"
[[ -f "$FILE" ]] || die "no compose file at $FILE"

if command -v docker-compose >/dev/null 2>&1; then
    COMPOSE=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
else
    apt_install docker-compose
    COMPOSE=(docker-compose)
fi
python3 -c 'import yaml' 2>/dev/null || apt_install python3-yaml

# A clean environment: the check is of the file's own defaults, not of this shell's settings
# (lib.sh exports CONTRACT §3's variables for the local stack). AUTH_SECRET has no default in
# the file, so the check passes a placeholder of the 32 bytes the API asks for at least.
AUTH_SECRET_PLACEHOLDER="compose-check-placeholder-secret-of-44-bytes"
compose_without_secret() {
    env -i PATH="$PATH" HOME="${HOME:-/root}" "${COMPOSE[@]}" -f "$FILE" --project-directory "$(dirname "$FILE")" "$@"
}
compose() {
    env -i PATH="$PATH" HOME="${HOME:-/root}" AUTH_SECRET="$AUTH_SECRET_PLACEHOLDER" \
        "${COMPOSE[@]}" -f "$FILE" --project-directory "$(dirname "$FILE")" "$@"
}

info "${COMPOSE[*]} config -q ($FILE)"
compose config -q || die "$FILE is not a valid compose file"
# Without AUTH_SECRET, Compose itself must stop, naming it.
if out="$(compose_without_secret config -q 2>&1)"; then
    die "$FILE runs without AUTH_SECRET: it must require one (\${AUTH_SECRET:?...})"
fi
[[ "$out" == *AUTH_SECRET* ]] || die "without AUTH_SECRET, Compose did not say why: $out"

RESOLVED="$(mktemp)"
trap 'rm -f "$RESOLVED"' EXIT
compose config >"$RESOLVED"

python3 - "$RESOLVED" "$AUTH_SECRET_PLACEHOLDER" <<'PY' || die "$FILE does not run the stack the README describes"
import sys
import yaml

with open(sys.argv[1]) as f:
    config = yaml.safe_load(f)
services = config.get("services", {})
problems = []

def check(ok, what):
    if not ok:
        problems.append(what)

expected = {
    "temporal-db", "temporal-schema", "temporal", "temporal-setup", "temporal-ui",
    "shop-db", "db-setup", "schedule", "data-platform", "worker", "api",
}
check(expected <= set(services), f"missing services: {sorted(expected - set(services))}")

def env(name):
    e = services.get(name, {}).get("environment", {})
    if isinstance(e, list):
        e = dict(item.split("=", 1) for item in e)
    return e

contract = {
    "TEMPORAL_ADDRESS": "temporal:7233",
    "TEMPORAL_NAMESPACE": "default",
    "TASK_QUEUE": "orders",
    "DATA_PLATFORM_URL": "http://data-platform:8090/events",
    "PAYMENT_TIMEOUT": "15m",
    "RATE_LIMIT": "20/s",
}
for name in ("worker", "api", "db-setup"):
    e = env(name)
    for key, value in contract.items():
        check(e.get(key) == value, f"{name}: {key}={e.get(key)!r}, expected {value!r}")
    check(str(e.get("DATABASE_URL", "")).endswith("@shop-db:5432/orders"),
          f"{name}: DATABASE_URL={e.get('DATABASE_URL')!r} is not the shop's database")
    check(e.get("AUTH_SECRET") == sys.argv[2], f"{name}: AUTH_SECRET does not pass through")
check(env("api").get("HTTP_ADDR") == "0.0.0.0:8080", "api: HTTP_ADDR must listen on 0.0.0.0:8080")
check(env("api").get("API_METRICS_ADDR") == "0.0.0.0:9465", "api: API_METRICS_ADDR")
check(env("worker").get("WORKER_METRICS_ADDR") == "0.0.0.0:9464", "worker: WORKER_METRICS_ADDR")

# One image for the worker, the API, the receiver and the database set-up.
saga = {"worker", "api", "data-platform", "db-setup", "codec"}
images = {services.get(s, {}).get("image") for s in saga}
check(len(images) == 1 and None not in images, f"one image for {sorted(saga)}: {images}")
for s in saga:
    check("build" in services.get(s, {}), f"{s}: built from the Dockerfile")
check(services.get("db-setup", {}).get("command") == ["starter", "db", "setup"],
      "db-setup runs `starter db setup`")
check(services.get("api", {}).get("command") == ["starter", "serve"], "api runs `starter serve`")
check(services.get("schedule", {}).get("command") == ["starter", "schedule"],
      "schedule runs `starter schedule` (the reconciliation's Temporal Schedule)")
check(services.get("worker", {}).get("command") == ["worker"], "worker runs `worker`")
check(services.get("data-platform", {}).get("command") == ["data-platform"],
      "data-platform runs `data-platform`")

# The codec server (CONTRACT §8): off loopback, so it requires a token; the UI calls it.
codec = services.get("codec", {})
check(codec.get("command") == ["starter", "codec"], "codec runs `starter codec`")
codec_env = codec.get("environment", {}) or {}
check(codec_env.get("CODEC_AUTH") == "required", "codec: CODEC_AUTH must be required off loopback")
check(codec_env.get("CODEC_ADDR") == "0.0.0.0:8081", "codec: CODEC_ADDR must listen on 0.0.0.0:8081")
check("http://127.0.0.1:8233" in str(codec_env.get("CODEC_ORIGINS", "")),
      "codec: CODEC_ORIGINS must allow the Web UI")
check("healthcheck" in codec, "codec: no health check")
ui_env = services.get("temporal-ui", {}).get("environment", {}) or {}
check(ui_env.get("TEMPORAL_CODEC_ENDPOINT") == "http://127.0.0.1:8081",
      "temporal-ui: TEMPORAL_CODEC_ENDPOINT must name the codec server")
for s in ("worker", "api", "codec"):
    check("PAYLOAD_KEYS" in (services.get(s, {}).get("environment", {}) or {}),
          f"{s}: PAYLOAD_KEYS must pass through")

# Temporal's images are pinned, not `latest`.
for s in ("temporal", "temporal-schema", "temporal-setup", "temporal-ui"):
    image = services.get(s, {}).get("image", "")
    check(":" in image and not image.endswith(":latest"), f"{s}: pin the image ({image!r})")
# The search attributes come from search-attributes.txt, mounted where the set-up reads them.
setup = services.get("temporal-setup", {})
mounted = False
for v in setup.get("volumes", []) or []:
    if isinstance(v, dict):
        source, target = str(v.get("source", "")), v.get("target")
    else:
        parts = str(v).split(":")
        source, target = parts[0], parts[1] if len(parts) > 1 else None
    mounted = mounted or (source.endswith("search-attributes.txt")
                          and target == "/etc/order-saga/search-attributes.txt")
check(mounted, "temporal-setup does not mount search-attributes.txt")
check("/etc/order-saga/search-attributes.txt" in str(setup.get("command", "")),
      "temporal-setup does not register the search attributes of search-attributes.txt")

# Long-running services say when they are healthy; the set-up runs before the worker and API.
for s in ("temporal-db", "temporal", "shop-db", "data-platform", "worker", "api"):
    check("healthcheck" in services.get(s, {}), f"{s}: no health check")
for s in ("worker", "api"):
    deps = services.get(s, {}).get("depends_on", {})
    for d in ("db-setup", "temporal-setup"):
        cond = deps.get(d, {}).get("condition") if isinstance(deps, dict) else None
        check(cond == "service_completed_successfully", f"{s} must wait for {d} to finish")

# Workers scale (`--scale worker=N`): no fixed name, no host port.
worker = services.get("worker", {})
check("container_name" not in worker, "worker: a container_name prevents scaling")
check(not worker.get("ports"), "worker: a host port prevents scaling")

# Nothing listens on the host's other interfaces.
for s, svc in services.items():
    for p in svc.get("ports", []) or []:
        host_ip = p.get("host_ip") if isinstance(p, dict) else str(p).split(":")[0]
        check(host_ip == "127.0.0.1", f"{s}: port {p} is not bound to 127.0.0.1")

if problems:
    for p in problems:
        print(f"compose-check: {p}", file=sys.stderr)
    sys.exit(1)
print(f"compose-check: {len(services)} services as described")
PY
ok "docker-compose.yml is valid and runs the stack the README describes"
