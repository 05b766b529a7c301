# Sourced by demo.sh and test.sh: makes sure the system packages, the
# virtual environment and a build of the extension exist.
#   pseud_setup [plain|asan] [PYTHON]
#       -> sets PSEUD_PY (python) and PSEUD_LIB (import path). With PYTHON
#          (an interpreter found by pseud_pythons), its own venv .venv-3.X
#          and build dir build/<variant>-3.X; without, python3, .venv and
#          build/<variant>.
#   pseud_pythons  -> lines "3.X PATH", one per CPython the project supports
#                     (requires-python in pyproject.toml) found on this machine
set -euo pipefail

PSEUD_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# PSEUD_VENV, if set, is used for the interpreter it was made with
_PSEUD_VENV_GIVEN=${PSEUD_VENV:-}
PSEUD_VENV=${PSEUD_VENV:-$PSEUD_ROOT/.venv}
# the CPython minor versions supported: 3.10 (requires-python) to 3.13
PSEUD_MINORS="10 11 12 13"

_have_pkg() { pkg-config --exists "$@" 2>/dev/null; }

_python_ok() {
    python3 - <<'PY' 2>/dev/null
import ensurepip, sysconfig, os, sys
sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')) else 1)
PY
}

pseud_system_packages() {
    local missing=()
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    command -v cc >/dev/null 2>&1 || missing+=(gcc)
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
    if command -v pkg-config >/dev/null 2>&1; then
        _have_pkg libzmq || missing+=(libzmq3-dev)
        _have_pkg msgpack-c || _have_pkg msgpack || missing+=(MSGPACK)
    else
        missing+=(libzmq3-dev MSGPACK)
    fi
    if command -v python3 >/dev/null 2>&1 && ! _python_ok; then
        missing+=(python3-dev python3-venv)
    fi
    [ ${#missing[@]} -eq 0 ] && return 0

    if [ "$(id -u)" != 0 ]; then
        echo "pseud: missing system packages: ${missing[*]/MSGPACK/libmsgpack-dev}" >&2
        echo "pseud: run as root, or: sudo apt-get install ${missing[*]/MSGPACK/libmsgpack-dev}" >&2
        exit 1
    fi
    echo "== installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    local pkgs=()
    for p in "${missing[@]}"; do
        if [ "$p" = MSGPACK ]; then
            # msgpack-c 6 is libmsgpack-c-dev (Debian 13), msgpack-c 4 libmsgpack-dev (Debian 12)
            if apt-cache show libmsgpack-c-dev >/dev/null 2>&1; then p=libmsgpack-c-dev; else p=libmsgpack-dev; fi
        fi
        pkgs+=("$p")
    done
    apt-get install -y -qq "${pkgs[@]}" >/dev/null
}

# ensure_venv DIR REQUIREMENTS [PYTHON]: a virtual environment at DIR with the
# packages of REQUIREMENTS, reinstalled only when that file changes.
# PYTHON (default python3) creates it. Returns non-zero on failure, also
# where set -e does not hold (a function called left of || or in an if).
ensure_venv() {
    local venv=$1 req=$2 python=${3:-python3}
    if [ ! -x "$venv/bin/python" ]; then
        echo "== creating $venv"
        "$python" -m venv "$venv" || return 1
    fi
    local stamp="$venv/.pseud-deps"
    local want
    want=$(cat "$req")
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "== installing $(basename "$req") into $venv"
        "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req" || return 1
        printf '%s' "$want" > "$stamp"
    fi
}

pseud_venv() {
    ensure_venv "$PSEUD_VENV" "$PSEUD_ROOT/requirements-dev.txt" "${1:-python3}"
}

# The interpreter for 3.X: python3.X on PATH, else pyenv's versions; it must
# run and really be 3.X (a pyenv shim of a version not installed fails).
_find_python() {
    local minor=$1 cand
    for cand in "$(command -v "python3.$minor" 2>/dev/null || true)" \
                "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3."$minor".*/bin/python3."$minor"; do
        [ -n "$cand" ] && [ -x "$cand" ] || continue
        if "$cand" -c "import sys; sys.exit(sys.version_info[:2] != (3, $minor))" 2>/dev/null; then
            echo "$cand"
            return 0
        fi
    done
    return 1
}

pseud_pythons() {
    local minor path
    for minor in $PSEUD_MINORS; do
        if path=$(_find_python "$minor"); then
            echo "3.$minor $path"
        fi
    done
}

# The version "3.X" of a python.
_python_version() {
    "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'
}

# Upstream pseud 1.0.1, the interop tests' peer, in its own environment:
# it is a package named `pseud` too, so it never goes into $PSEUD_VENV.
# Sets PSEUD_INTEROP_PYTHON; tests/interop runs upstream_peer.py with it.
pseud_interop_venv() {
    local venv=${PSEUD_INTEROP_VENV:-$PSEUD_ROOT/.venv-interop}
    ensure_venv "$venv" "$PSEUD_ROOT/tests/interop/requirements.txt"
    PSEUD_INTEROP_PYTHON="$venv/bin/python"
}

# pyzmq built from source against the system libzmq, the one pseud links
# (tests/requirements-shared-pyzmq.txt), for PYTHON (default python3), in
# .venv-3.X-syszmq: the tests of pyzmq sharing pseud's libzmq run there.
# Sets PSEUD_SHARED_VENV.
pseud_shared_pyzmq_venv() {
    local python=${1:-python3}
    PSEUD_SHARED_VENV=${PSEUD_SHARED_VENV:-$PSEUD_ROOT/.venv-$(_python_version "$python")-syszmq}
    ensure_venv "$PSEUD_SHARED_VENV" "$PSEUD_ROOT/tests/requirements-shared-pyzmq.txt" "$python"
}

# Build the package (Python files and the extension) into build/<variant>/lib.
pseud_build() {
    local variant=${1:-plain} suffix=${2:-}
    local base="$PSEUD_ROOT/build/$variant$suffix"
    local sanitize=
    [ "$variant" = asan ] && sanitize=address
    (cd "$PSEUD_ROOT" && PSEUD_SANITIZE=$sanitize PSEUD_WERROR=${CI:+1} \
        "$PSEUD_VENV/bin/python" setup.py -q build --build-base "$base" \
        --build-lib "$base/lib" >"$base.log" 2>&1) || { cat "$base.log" >&2; exit 1; }
    grep -E "^src/.*(warning|error):" "$base.log" >&2 || true
    PSEUD_LIB="$base/lib"
    PSEUD_PY="$PSEUD_VENV/bin/python"
}

pseud_setup() {
    local variant=${1:-plain} python=${2:-} suffix=
    pseud_system_packages
    if [ -n "$python" ]; then
        local version
        version=$(_python_version "$python")
        suffix="-$version"
        PSEUD_VENV=$PSEUD_ROOT/.venv-$version
        if [ -n "$_PSEUD_VENV_GIVEN" ] && [ -x "$_PSEUD_VENV_GIVEN/bin/python" ] \
           && [ "$(_python_version "$_PSEUD_VENV_GIVEN/bin/python")" = "$version" ]; then
            PSEUD_VENV=$_PSEUD_VENV_GIVEN
        fi
    fi
    pseud_venv "${python:-python3}"
    mkdir -p "$PSEUD_ROOT/build"
    pseud_build "$variant" "$suffix"
}
