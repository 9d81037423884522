#!/usr/bin/env bash
# Create .venv-libosdp at the repository root with libosdp 3.x, the reference OSDP peer for the
# tests (tests/drivers/osdp/libosdp_peer.py runs in it). A venv of its own: libosdp installs a top-level
# package named `osdp`, which clashes with the pure-Python `osdp` package, and 4.x changes the
# Python API, so it never goes into .venv.
#
# Idempotent: a stamp file records the requirement it installed, and a second run only checks
# that `import osdp` still works. PyPI has manylinux wheels for CPython x86_64/aarch64; where
# none fits, pip builds the sdist, which needs only a C compiler and the Python headers
# (libosdp vendors its AES), installed here via apt-get when root and missing.
set -euo pipefail

readonly REQUIREMENT='libosdp>=3,<4'
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
readonly ROOT
readonly VENV="$ROOT/.venv-libosdp"
readonly STAMP="$VENV/.installed-libosdp"
PYTHON="${PYTHON:-python3}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

log() { printf 'libosdp_env: %s\n' "$*"; }
die() {
    printf 'libosdp_env: ERROR: %s\n' "$*" >&2
    exit 1
}

is_root() { [[ $(id -u) -eq 0 ]]; }
have_apt() { command -v apt-get >/dev/null; }

APT_UPDATED=0
apt_install() { # package...
    if ((APT_UPDATED == 0)); then
        apt-get update -qq
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# Prints the interpreter's major.minor, e.g. 3.11 (Debian names its -venv/-dev packages so).
py_version() { "$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])'; }

check_import() {
    "$VENV/bin/python" -c 'import osdp, osdp_sys; osdp.ControlPanel; osdp.PeripheralDevice' \
        2>/dev/null
}

installed_version() {
    "$VENV/bin/python" -c 'from importlib.metadata import version; print(version("libosdp"))'
}

make_venv() {
    command -v "$PYTHON" >/dev/null || die "no '$PYTHON' on PATH (set PYTHON=...)"
    if "$PYTHON" -m venv "$VENV" 2>/dev/null; then
        return
    fi
    # Debian's python3 has no ensurepip without pythonX.Y-venv.
    rm -rf "$VENV"
    if is_root && have_apt; then
        log "installing python$(py_version)-venv (Debian's python has no ensurepip without it)"
        apt_install "python$(py_version)-venv"
        "$PYTHON" -m venv "$VENV" || die "'$PYTHON -m venv' failed"
    else
        die "'$PYTHON -m venv' failed; on Debian: apt-get install python$(py_version)-venv"
    fi
}

# What building the sdist needs: a C compiler, libc headers and Python.h.
ensure_build_deps() {
    local missing=()
    command -v cc >/dev/null || command -v gcc >/dev/null || missing+=(gcc libc6-dev)
    if ! "$VENV/bin/python" -c \
        'import os, sysconfig; raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
        missing+=("python$(py_version)-dev")
    fi
    if ((${#missing[@]} == 0)); then
        return
    fi
    if is_root && have_apt; then
        log "installing ${missing[*]} to build libosdp from source"
        apt_install "${missing[@]}"
    else
        die "no libosdp wheel for this platform; building it needs: ${missing[*]}"
    fi
}

install_libosdp() {
    # A wheel first, so no compiler is needed where PyPI has one.
    if "$VENV/bin/python" -m pip install --quiet --only-binary libosdp "$REQUIREMENT"; then
        return
    fi
    log "no libosdp wheel fits this Python/platform: building the sdist"
    ensure_build_deps
    "$VENV/bin/python" -m pip install --quiet --no-binary libosdp "$REQUIREMENT"
}

main() {
    if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$REQUIREMENT" ]] && check_import; then
        log "$VENV has libosdp $(installed_version)"
        return
    fi
    if [[ ! -x "$VENV/bin/python" ]]; then
        log "creating $VENV with $PYTHON"
        make_venv
    fi
    # Nothing in it is ours to commit; .gitignore covers .venv/ but not this name.
    printf '*\n' >"$VENV/.gitignore"
    rm -f "$STAMP"
    install_libosdp
    check_import || die "libosdp installed but 'import osdp' fails in $VENV"
    printf '%s' "$REQUIREMENT" >"$STAMP"
    log "installed libosdp $(installed_version) in $VENV"
}

main "$@"
