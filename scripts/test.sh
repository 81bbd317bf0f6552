#!/usr/bin/env bash
# Mailscribe's one test command (the README's test command): run it from the
# repository root, e.g. `bash scripts/test.sh [extra cargo test args...]`.
#
# On a fresh Debian 12 machine it
#   1. installs the system packages the tests need (Dovecot with IMAP, LMTP
#      and Sieve, OpenSSL, Postfix for the mail-flow-rule test, Chromium
#      with its WebDriver for the browser tests, Prometheus for promtool,
#      which checks /metrics and the alert rules, faketime for the test of a
#      clock that jumps backwards, and systemd for `systemd-analyze verify`
#      of the unit; systemd is not started) when they are missing and we
#      run as root; Postfix is installed unconfigured, so the system's own
#      instance never starts (the test runs a private one);
#   2. makes sure a PostgreSQL server is reachable: TEST_DATABASE_URL when set,
#      else postgres://postgres@127.0.0.1:5432/postgres, which it starts (and,
#      as root, installs and opens to passwordless TCP logins from 127.0.0.1)
#      when needed;
#   3. makes sure Schemathesis (pinned, from PyPI) is in a virtualenv under
#      the target directory, creating it with `python3 -m venv` and pip when
#      missing, for the API contract test
#      (crates/mailscribe-cli/tests/it/contract.rs);
#   4. exports TEST_DATABASE_URL and MAILSCRIBE_SCHEMATHESIS and runs
#      `cargo test --workspace --locked "$@"`.
#
# Environment:
#   TEST_DATABASE_URL          PostgreSQL server the tests create throwaway
#                              databases on: postgres://user[:password]@host:port/db
#                              for a user that may CREATE DATABASE. When set, this
#                              script only checks it and never starts or changes
#                              a local server.
#   MAILSCRIBE_SCHEMATHESIS    The `st` of an installed Schemathesis. When unset,
#                              this script uses (and when missing creates)
#                              $CARGO_TARGET_DIR/tools/schemathesis-<version>/bin/st
#                              (target/ when CARGO_TARGET_DIR is unset).
#   MAILSCRIBE_TEST_DRY_RUN=1  Do every check and setup step, but print the cargo
#                              command instead of running it (used to test this
#                              script itself).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly DEFAULT_DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
readonly PG_HOST=127.0.0.1
readonly PG_PORT=5432
readonly SYSTEM_PACKAGES=(dovecot-core dovecot-imapd dovecot-lmtpd dovecot-sieve openssl postfix chromium chromium-driver prometheus faketime systemd python3 python3-venv)
# The API contract test's client; a new version is a deliberate change.
readonly SCHEMATHESIS_VERSION=4.32.5
# postgresql-common's own override for /etc/postgresql.
readonly PG_CONF_ROOT="${PG_CLUSTER_CONF_ROOT:-/etc/postgresql}"
readonly READY_TIMEOUT_MS=30000
readonly POLL_INTERVAL=0.2

step() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() {
    printf 'scripts/test.sh: error: %s\n' "$1" >&2
    shift
    local line
    for line in "$@"; do printf '    %s\n' "$line" >&2; done
    exit 1
}

is_root() { [[ "$(id -u)" == 0 ]]; }

now_ms() { local us=${EPOCHREALTIME/[.,]/}; echo $((us / 1000)); }

# Runs "$@" until it succeeds or READY_TIMEOUT_MS pass; returns its success.
poll() {
    local deadline=$(($(now_ms) + READY_TIMEOUT_MS))
    until "$@" >/dev/null 2>&1; do
        (($(now_ms) < deadline)) || return 1
        sleep "$POLL_INTERVAL"
    done
}

package_installed() {
    if command -v dpkg-query >/dev/null 2>&1; then
        [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
    else
        # Not a dpkg system: look for what the tests use.
        case "$1" in
            dovecot-core) [[ -x /usr/sbin/dovecot ]] ;;
            openssl) command -v openssl >/dev/null 2>&1 ;;
            postfix) [[ -x /usr/sbin/postfix ]] ;;
            prometheus) command -v promtool >/dev/null 2>&1 ;;
            faketime) command -v faketime >/dev/null 2>&1 ;;
            systemd) command -v systemd-analyze >/dev/null 2>&1 ;;
            python3) command -v python3 >/dev/null 2>&1 ;;
            python3-venv) python3 -c 'import ensurepip, venv' >/dev/null 2>&1 ;;
            *) [[ -x /usr/sbin/dovecot ]] ;;
        esac
    fi
}

APT_UPDATED=0
apt_install() {
    if ((APT_UPDATED == 0)); then
        apt-get update
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

ensure_system_packages() {
    step "Checking system packages: ${SYSTEM_PACKAGES[*]}"
    local missing=() pkg
    for pkg in "${SYSTEM_PACKAGES[@]}"; do
        package_installed "$pkg" || missing+=("$pkg")
    done
    if ((${#missing[@]} == 0)); then
        note "all installed"
        return
    fi
    if ! is_root || ! command -v apt-get >/dev/null 2>&1; then
        die "missing system packages: ${missing[*]}" \
            "Install them as root, e.g.: apt-get install ${missing[*]}" \
            "(or run this script as root on Debian/Ubuntu and it installs them)."
    fi
    note "installing: ${missing[*]}"
    if [[ " ${missing[*]} " == *" postfix "* ]]; then
        preseed_postfix
    fi
    apt_install "${missing[@]}"
    if [[ " ${missing[*]} " == *" postfix "* ]]; then
        check_system_postfix_idle
    fi
}

# "No configuration": the package installs without asking and writes no
# main.cf, so the system's Postfix does not start. The tests run their own
# instance from a throwaway directory (crates/mailscribe-testkit/src/postfix.rs).
preseed_postfix() {
    note "preseeding debconf: postfix postfix/main_mailer_type select No configuration"
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
}

# The system instance must not hold port 25 or run beside the tests' one.
check_system_postfix_idle() {
    if postfix status >/dev/null 2>&1; then
        note "the system's Postfix was started by its install; stopping it"
        postfix stop >/dev/null 2>&1 || true
    fi
    if (exec 3<>/dev/tcp/127.0.0.1/25) 2>/dev/null; then
        note "warning: something listens on 127.0.0.1:25 (not used by the tests)"
    else
        note "the system's Postfix is installed but not running"
    fi
}

# The URL with any password replaced, for messages.
redact() { sed -E 's#^([a-z]+://[^:/@]*):[^@]*@#\1:***@#' <<<"$1"; }

# Succeeds when "$1" accepts a login; on failure leaves the error in PSQL_ERROR.
PSQL_ERROR=""
can_login() {
    local out
    if out=$(PGCONNECT_TIMEOUT=5 psql "$1" -w -X -A -t -q -c 'select 1' 2>&1); then
        return 0
    fi
    PSQL_ERROR=$out
    return 1
}

port_open() { (exec 3<>"/dev/tcp/$PG_HOST/$PG_PORT") 2>/dev/null; }

local_server_ready() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null
    else
        port_open
    fi
}

pg_server_installed() {
    command -v pg_ctlcluster >/dev/null 2>&1 || return 1
    local server
    for server in /usr/lib/postgresql/*/bin/postgres; do
        [[ -x "$server" ]] && return 0
    done
    return 1
}

# Prints "version cluster" of the local cluster on PG_PORT, or nothing when
# there is none (then fails when other clusters exist: they use other ports).
local_cluster() {
    if command -v pg_lsclusters >/dev/null 2>&1; then
        local all
        all=$(pg_lsclusters -h 2>/dev/null || true)
        [[ -n "$all" ]] || return 0
        awk -v port="$PG_PORT" '$3 == port { print $1, $2; found = 1; exit } END { exit !found }' <<<"$all" \
            || no_server_help "no PostgreSQL cluster uses port $PG_PORT; the clusters here:" "$all" \
                "(set TEST_DATABASE_URL to use one of them)."
    elif [[ -d "$PG_CONF_ROOT" ]]; then
        local version
        version=$(ls "$PG_CONF_ROOT" | head -1)
        if [[ -n "$version" && -d "$PG_CONF_ROOT/$version/main" ]]; then
            printf '%s main' "$version"
        fi
    fi
}

no_server_help() {
    die "$1" "${@:2}" \
        "Provide a PostgreSQL server: start one on $PG_HOST:$PG_PORT where user postgres" \
        "logs in without a password (run this script as root and it does that), or set" \
        "TEST_DATABASE_URL=postgres://user@host:port/db for a user that may CREATE DATABASE."
}

# Makes the default local server run and accept passwordless postgres logins.
ensure_local_postgres() {
    local url=$DEFAULT_DATABASE_URL
    if command -v pg_isready >/dev/null 2>&1 && command -v psql >/dev/null 2>&1 \
        && local_server_ready && can_login "$url"; then
        note "running at $PG_HOST:$PG_PORT"
        return
    fi

    if ! pg_server_installed; then
        if port_open; then
            no_server_help "a server answers at $PG_HOST:$PG_PORT, but not as passwordless user postgres${PSQL_ERROR:+: $PSQL_ERROR}" \
                "(it is not a Debian PostgreSQL cluster this script can configure)."
        fi
        if ! is_root || ! command -v apt-get >/dev/null 2>&1; then
            no_server_help "PostgreSQL is not installed and no server answers at $PG_HOST:$PG_PORT" \
                "(as root, this script would apt-get install postgresql)."
        fi
        note "installing postgresql"
        apt_install postgresql
    fi

    local cluster
    cluster=$(local_cluster)
    if [[ -z "$cluster" ]]; then
        is_root || no_server_help "no PostgreSQL cluster exists (see pg_lsclusters)."
        local version
        version=$(ls /usr/lib/postgresql | sort -V | tail -1)
        note "creating cluster $version main on port $PG_PORT"
        pg_createcluster --port "$PG_PORT" "$version" main
        cluster="$version main"
    fi
    local version=${cluster% *} name=${cluster#* }

    if ! local_server_ready; then
        note "starting cluster $version $name"
        pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start \
            || no_server_help "could not start PostgreSQL cluster $version $name" \
                "(starting it needs root or its owner; see pg_lsclusters and its log)."
        poll local_server_ready \
            || no_server_help "PostgreSQL cluster $version $name did not accept connections on $PG_HOST:$PG_PORT within $((READY_TIMEOUT_MS / 1000)) s."
    fi
    note "running at $PG_HOST:$PG_PORT (cluster $version $name)"

    can_login "$url" && return
    # Fresh Debian clusters ask for a password (scram-sha-256) on TCP; the
    # postgres role has none. Trust local TCP logins, as the tests expect.
    local hba="$PG_CONF_ROOT/$version/$name/pg_hba.conf"
    local rule="host all all 127.0.0.1/32 trust"
    if ! is_root || [[ ! -f "$hba" ]]; then
        no_server_help "cannot log in to $url: $PSQL_ERROR" \
            "(as root, this script would add '$rule' to the top of $hba)."
    fi
    if ! grep -qxF "$rule" "$hba"; then
        note "adding '$rule' to the top of $hba"
        local tmp
        tmp=$(mktemp)
        { printf '# Added by Mailscribe scripts/test.sh: passwordless TCP logins from 127.0.0.1.\n%s\n' "$rule"
          cat "$hba"; } >"$tmp"
        cat "$tmp" >"$hba" # keeps the file's owner and mode
        rm -f "$tmp"
    fi
    pg_ctlcluster --skip-systemctl-redirect "$version" "$name" reload
    poll can_login "$url" || no_server_help "cannot log in to $url: $PSQL_ERROR"
}

ensure_postgres() {
    if [[ -n "${TEST_DATABASE_URL:-}" ]]; then
        local shown
        shown=$(redact "$TEST_DATABASE_URL")
        step "Checking PostgreSQL at TEST_DATABASE_URL=$shown"
        if ! command -v psql >/dev/null 2>&1; then
            note "psql is not installed: not checking it here (the tests report a bad server)"
            return
        fi
        can_login "$TEST_DATABASE_URL" \
            || no_server_help "cannot connect to TEST_DATABASE_URL=$shown: $PSQL_ERROR"
    else
        export TEST_DATABASE_URL=$DEFAULT_DATABASE_URL
        step "Checking PostgreSQL at $TEST_DATABASE_URL"
        ensure_local_postgres
    fi
    local may_create
    may_create=$(PGCONNECT_TIMEOUT=5 psql "$TEST_DATABASE_URL" -w -X -A -t -q \
        -c 'select rolsuper or rolcreatedb from pg_roles where rolname = current_user' 2>/dev/null || true)
    [[ "$may_create" == t ]] \
        || no_server_help "the user of TEST_DATABASE_URL=$(redact "$TEST_DATABASE_URL") may not CREATE DATABASE."
    note "connected; this user may create databases"
}

# Schemathesis in its own virtualenv, created only when missing: the
# system's Python stays untouched, and the test finds `st` through
# MAILSCRIBE_SCHEMATHESIS.
ensure_schemathesis() {
    if [[ -n "${MAILSCRIBE_SCHEMATHESIS:-}" ]]; then
        step "Checking Schemathesis at MAILSCRIBE_SCHEMATHESIS=$MAILSCRIBE_SCHEMATHESIS"
        [[ -x "$MAILSCRIBE_SCHEMATHESIS" ]] || die "MAILSCRIBE_SCHEMATHESIS=$MAILSCRIBE_SCHEMATHESIS is not an executable" \
            "Unset it and this script installs Schemathesis $SCHEMATHESIS_VERSION into a virtualenv."
        return
    fi
    local target=${CARGO_TARGET_DIR:-target}
    [[ "$target" == /* ]] || target="$PWD/$target"
    local venv="$target/tools/schemathesis-$SCHEMATHESIS_VERSION"
    step "Checking Schemathesis $SCHEMATHESIS_VERSION in $venv"
    if [[ -x "$venv/bin/st" ]] && "$venv/bin/st" --version >/dev/null 2>&1; then
        note "installed"
    else
        command -v python3 >/dev/null 2>&1 || die "python3 is not installed" "Install python3 and python3-venv (this script does, as root)."
        note "creating a virtualenv and installing schemathesis==$SCHEMATHESIS_VERSION from PyPI"
        rm -rf "$venv"
        mkdir -p "$(dirname "$venv")"
        python3 -m venv "$venv" || die "python3 -m venv $venv failed" "Install python3-venv (this script does, as root)."
        "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" \
            || { rm -rf "$venv"; die "pip could not install schemathesis==$SCHEMATHESIS_VERSION" "(PyPI must be reachable)."; }
        "$venv/bin/st" --version >/dev/null 2>&1 || die "$venv/bin/st does not run after installing it"
    fi
    export MAILSCRIBE_SCHEMATHESIS="$venv/bin/st"
}

find_cargo() {
    command -v cargo >/dev/null 2>&1 && return
    # rustup installs here, but a fresh shell may not have it on PATH yet.
    if [[ -x "${CARGO_HOME:-${HOME:-}/.cargo}/bin/cargo" ]]; then
        PATH="${CARGO_HOME:-${HOME:-}/.cargo}/bin:$PATH"
        export PATH
        return
    fi
    [[ "${MAILSCRIBE_TEST_DRY_RUN:-}" == 1 ]] \
        || die "cargo is not installed" "Install Rust with rustup: https://rustup.rs"
}

main() {
    ensure_system_packages
    ensure_postgres
    export TEST_DATABASE_URL
    ensure_schemathesis
    find_cargo
    local cmd=(cargo test --workspace --locked "$@")
    step "Running ${cmd[*]}"
    if [[ "${MAILSCRIBE_TEST_DRY_RUN:-}" == 1 ]]; then
        note "dry run (MAILSCRIBE_TEST_DRY_RUN=1), not running:"
        printf '    TEST_DATABASE_URL=%s MAILSCRIBE_SCHEMATHESIS=%q' "$(redact "$TEST_DATABASE_URL")" "$MAILSCRIBE_SCHEMATHESIS"
        printf ' %q' "${cmd[@]}"
        printf '\n'
        return
    fi
    exec "${cmd[@]}"
}

main "$@"
