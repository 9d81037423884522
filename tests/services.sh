#!/usr/bin/env bash
# Make sure the system services the integration tests talk to are installed and running:
# PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth), the mosquitto binary (the tests
# start their own broker), and pcscd with vsmartcard's vpcd driver listening on 35963/35964.
# Also installs what pyscard needs to build from source (libpcsclite-dev, swig, gcc) and the
# real PC/SC clients the tests check simulated cards against (opensc, yubico-piv-tool), and
# Debian's Chromium, the real browser of tests/browser/ (Playwright drives it: its own browser
# download CDN is not reachable from CI, Debian's mirror is).
#
# Idempotent and quick when everything is already there. Works without systemd: services are
# started directly (CI containers have no init system). Exits non-zero, saying why, when a
# service cannot be made to run.
set -euo pipefail

readonly PACKAGES=(
    postgresql mosquitto pcscd vsmartcard-vpcd libpcsclite-dev swig gcc
    opensc yubico-piv-tool socat chromium
)
PG_HOST=127.0.0.1
PG_PORT=5432
PG_CLUSTER=main
readonly VPCD_PORTS=(35963 35964)
readonly PCSCD_LOG=/tmp/accessd-pcscd.log
readonly HBA_MARK="# added by accessd tests/services.sh (local testing only)"

# Debian puts the daemons in sbin, which a non-login shell may not have on PATH.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

log() { printf 'services: %s\n' "$*"; }
die() {
    printf 'services: ERROR: %s\n' "$*" >&2
    exit 1
}

is_root() { [[ $(id -u) -eq 0 ]]; }

# Runs a command as the postgres OS user (peer auth over the Unix socket needs that).
as_postgres() {
    if is_root; then
        runuser -u postgres -- "$@"
    else
        sudo -n -u postgres -- "$@"
    fi
}

port_listening() { # port
    ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

# --- packages -------------------------------------------------------------------------------

ensure_packages() {
    local missing=() pkg
    for pkg in "${PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null | grep -qx installed; then
            missing+=("$pkg")
        fi
    done
    if ((${#missing[@]} == 0)); then
        return
    fi
    if ! is_root; then
        log "not root: skipping install of missing packages: ${missing[*]}"
        log "  install them with: sudo apt-get install --no-install-recommends ${missing[*]}"
        return
    fi
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        || die "apt-get install failed for: ${missing[*]}"
}

# --- PostgreSQL -----------------------------------------------------------------------------

pg_cluster_version() {
    # The first cluster under /etc/postgresql; create one if the package left none.
    local version dirs
    shopt -s nullglob
    dirs=(/etc/postgresql/*/)
    if ((${#dirs[@]})); then
        version=$(basename "${dirs[0]}")
    else
        dirs=(/usr/lib/postgresql/*/bin/)
        ((${#dirs[@]})) || die "PostgreSQL is not installed (no /usr/lib/postgresql/<version>)"
        version=$(printf '%s\n' "${dirs[@]}" | cut -d/ -f5 | sort -n | tail -1)
        log "no PostgreSQL cluster found: creating $version/$PG_CLUSTER" >&2
        pg_createcluster "$version" "$PG_CLUSTER" >/dev/null \
            || die "pg_createcluster $version $PG_CLUSTER failed"
    fi
    printf '%s\n' "$version"
}

pg_wait_ready() { # seconds
    local i
    for ((i = 0; i < $1 * 2; i++)); do
        pg_isready -q -h "$PG_HOST" -p "$PG_PORT" && return 0
        sleep 0.5
    done
    return 1
}

pg_can_login() {
    PGCONNECT_TIMEOUT=5 psql -w -X -q -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres \
        -tAc 'select 1' >/dev/null 2>&1
}

# The Debian default for host connections is scram-sha-256; tests log in as postgres with no
# password, so put trust lines for loopback first in pg_hba.conf (first match wins).
pg_trust_loopback() { # version
    local hba
    hba=$(as_postgres psql -w -X -p "$PG_PORT" -tAc 'show hba_file' 2>/dev/null) \
        || hba="/etc/postgresql/$1/$PG_CLUSTER/pg_hba.conf"
    [[ -f $hba ]] || die "cannot find pg_hba.conf (tried $hba)"
    if grep -qF "$HBA_MARK" "$hba"; then
        die "trust lines already in $hba but login as postgres on $PG_HOST still fails"
    fi
    log "login as postgres on $PG_HOST needs a password: adding trust for 127.0.0.1/32 and"
    log "  ::1/128 at the top of $hba (a local test database, never do this in production)"
    local tmp
    tmp=$(mktemp)
    {
        printf '%s\n' "$HBA_MARK"
        printf 'host    all             all             127.0.0.1/32            trust\n'
        printf 'host    all             all             ::1/128                 trust\n'
        cat "$hba"
    } >"$tmp"
    cat "$tmp" >"$hba" # keeps the file's owner and mode
    rm -f "$tmp"
    pg_ctlcluster --skip-systemctl-redirect "$1" "$PG_CLUSTER" reload || die "PostgreSQL reload failed"
}

ensure_postgres() {
    command -v pg_isready >/dev/null || die "PostgreSQL is not installed (no pg_isready)"
    local version=""
    if ! pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; then
        version=$(pg_cluster_version)
        log "PostgreSQL not accepting on $PG_HOST:$PG_PORT: starting cluster $version/$PG_CLUSTER"
        pg_ctlcluster --skip-systemctl-redirect "$version" "$PG_CLUSTER" start \
            || die "pg_ctlcluster $version $PG_CLUSTER start failed (see /var/log/postgresql/)"
        pg_wait_ready 30 || die "PostgreSQL did not accept on $PG_HOST:$PG_PORT within 30 s"
    fi
    if ! pg_can_login; then
        [[ -n $version ]] || version=$(pg_cluster_version)
        pg_trust_loopback "$version"
        pg_can_login || die "cannot log in as postgres on $PG_HOST:$PG_PORT even with trust"
    fi
}

# --- Mosquitto ------------------------------------------------------------------------------

ensure_mosquitto() {
    command -v mosquitto >/dev/null || die "mosquitto is not installed"
    # The tests run their own broker; the system one is only started to keep the machine in
    # its usual state.
    if [[ -f /etc/mosquitto/mosquitto.conf ]] && ! pgrep -x mosquitto >/dev/null; then
        log "system mosquitto not running: starting it"
        # Debian's unit creates these before the daemon starts; without systemd, do it here.
        install -d -o mosquitto -g mosquitto /run/mosquitto /var/log/mosquitto 2>/dev/null || true
        mosquitto -d -c /etc/mosquitto/mosquitto.conf \
            || log "warning: system mosquitto did not start (the tests do not need it)"
    fi
}

# --- pcscd with vpcd ------------------------------------------------------------------------

vpcd_listening() {
    local port
    for port in "${VPCD_PORTS[@]}"; do
        port_listening "$port" || return 1
    done
}

vpcd_wait() { # seconds
    local i
    for ((i = 0; i < $1 * 4; i++)); do
        vpcd_listening && return 0
        sleep 0.25
    done
    return 1
}

start_pcscd() {
    # pcscd reads /etc/reader.conf.d/ (vpcd's entry) only at start-up. No --auto-exit: with no
    # systemd socket activation nothing would start it again.
    install -d -m 0755 /run/pcscd 2>/dev/null || true
    setsid nohup pcscd --foreground >"$PCSCD_LOG" 2>&1 </dev/null &
    disown || true
}

ensure_pcscd() {
    command -v pcscd >/dev/null || die "pcscd is not installed"
    local conf
    conf=$(grep -ls libifdvpcd /etc/reader.conf.d/* </dev/null | head -1 || true)
    [[ -n $conf ]] || die "no vpcd reader entry in /etc/reader.conf.d/ (is vsmartcard-vpcd installed?)"
    if vpcd_listening; then
        return
    fi
    local pids
    pids=$(pgrep -x pcscd || true)
    if [[ -n $pids ]]; then
        # Started before vsmartcard-vpcd was installed, so without the vpcd reader.
        log "pcscd is running without vpcd (ports ${VPCD_PORTS[*]} closed): restarting it"
        # shellcheck disable=SC2086
        kill $pids || die "cannot stop the running pcscd ($pids)"
        local i
        for ((i = 0; i < 20; i++)); do
            pgrep -x pcscd >/dev/null || break
            sleep 0.25
        done
        pgrep -x pcscd >/dev/null && die "pcscd ($pids) did not stop"
    fi
    log "starting pcscd --foreground (log: $PCSCD_LOG, reader config: $conf)"
    start_pcscd
    vpcd_wait 10 || die "vpcd is not listening on ${VPCD_PORTS[*]} after 10 s; see $PCSCD_LOG"
}

# --- Chromium -------------------------------------------------------------------------------

# Nothing to start (each browser test run launches its own headless Chromium); the version
# comes from dpkg: /usr/bin/chromium is a shell wrapper that warns on stderr where /dev/shm
# is small.
chromium_summary() {
    local version
    version=$(dpkg-query -W -f='${Version}' chromium 2>/dev/null || true)
    if [[ -n $version && -x /usr/bin/chromium ]]; then
        printf '/usr/bin/chromium %s\n' "$version"
    else
        printf 'NOT INSTALLED (tests/browser/ will be skipped)\n'
    fi
}

# --- summary --------------------------------------------------------------------------------

summary() {
    local pg mq pc
    if pg_isready -q -h "$PG_HOST" -p "$PG_PORT" && pg_can_login; then
        pg="up on $PG_HOST:$PG_PORT ($(psql -w -X -h "$PG_HOST" -p "$PG_PORT" -U postgres \
            -tAc 'show server_version' | cut -d' ' -f1), user postgres, trust)"
    else
        pg="DOWN"
    fi
    local mqver
    mqver=$(mosquitto -h 2>/dev/null | head -1 | awk '{print $3}' || true)
    if pgrep -x mosquitto >/dev/null; then
        mq="binary $(command -v mosquitto) ${mqver:-}, system broker running"
    else
        mq="binary $(command -v mosquitto) ${mqver:-}, system broker not running"
    fi
    if vpcd_listening; then
        pc="pcscd pid $(pgrep -x pcscd | head -1) up, vpcd listening on ${VPCD_PORTS[*]}"
    else
        pc="DOWN"
    fi
    log "postgresql: $pg"
    log "mosquitto:  $mq"
    log "pcscd:      $pc"
    log "chromium:   $(chromium_summary)"
}

main() {
    ensure_packages
    ensure_postgres
    ensure_mosquitto
    ensure_pcscd
    summary
}

# Sourcing only defines the functions (for trying one step on its own).
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
