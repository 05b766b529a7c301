#!/usr/bin/env bash
# The benchmark suite, one command:  bash bench/run.sh [--quick] [suite.py options]
# Sets up pseud-native like the tests do, a separate venv for the peer rows
# (bench/.venv-peers), compiles the raw-c row, then runs bench/suite.py.
# Options handled here (the rest go to suite.py):
#   --compare REV|PATH   build another commit (or a source tree) of pseud-native
#                        into bench/.compare/ and measure it as a row of its own
#   --plot [FILE.png]    bar chart of the ratios to raw-c (matplotlib, peers venv);
#                        without FILE: docs/_static/bench.png, which docs/performance.rst shows
#   --callgrind          instructions per call under valgrind (installed if missing)
source "$(dirname "$0")/../scripts/setup-env.sh"
pseud_setup plain
BENCH="$PSEUD_ROOT/bench"
PEERS="$BENCH/.venv-peers"
LOGS="$BENCH/results/setup"
mkdir -p "$LOGS"

# ---- peers venv: each package on its own, so that one failure only costs its row
peer_pip() { "$PEERS/bin/python" -m pip install -q --disable-pip-version-check "$@"; }
if [ ! -x "$PEERS/bin/python" ]; then
    echo "== creating $PEERS"
    python3 -m venv "$PEERS"
fi
if [ ! -f "$PEERS/.bench-peers-v1" ]; then
    echo "== installing the peer rows' packages into $PEERS (logs in $LOGS)"
    peer_pip 'pyzmq<26' msgpack gevent setuptools wheel >"$LOGS/base.log" 2>&1 \
        || echo "   base packages failed: see $LOGS/base.log"
    peer_pip pseud==1.0.1 zope.component >"$LOGS/pseud.log" 2>&1 \
        || echo "   pseud 1.0.1 failed: see $LOGS/pseud.log"
    peer_pip zerorpc >"$LOGS/zerorpc.log" 2>&1 \
        || echo "   zerorpc failed: see $LOGS/zerorpc.log"
    # mprpc 0.1.17's shipped C files predate Python 3.11 (longintrepr.h):
    # regenerate them from its .pyx with Cython 0.29 (language level 2: it
    # uses implicit relative imports), build without its msgpack-python pin.
    (
        set -e
        peer_pip 'Cython<3' gsocketpool
        src=$(mktemp -d)
        trap 'rm -rf "$src"' EXIT
        "$PEERS/bin/python" -m pip download -q --disable-pip-version-check \
            --no-deps --no-binary :all: -d "$src" mprpc==0.1.17
        tar -xzf "$src"/mprpc-0.1.17.tar.gz -C "$src"
        "$PEERS/bin/cython" -2 "$src"/mprpc-0.1.17/mprpc/{client,server}.pyx
        peer_pip --no-deps --no-build-isolation "$src/mprpc-0.1.17"
    ) >"$LOGS/mprpc.log" 2>&1 || echo "   mprpc failed: see $LOGS/mprpc.log"
    touch "$PEERS/.bench-peers-v1"
fi

# ---- raw-c
RAW_C="$BENCH/raw_c/raw_peer"
gcc -O2 -Wall -o "$RAW_C" "$BENCH/raw_c/raw_peer.c" -lzmq

# ---- options run.sh acts on
ARGS=()
COMPARE=
PLOT=
CALLGRIND=
while [ $# -gt 0 ]; do
    case $1 in
        --compare) COMPARE=${2:?--compare needs a git revision or a path}; shift ;;
        --compare=*) COMPARE=${1#--compare=} ;;
        --plot=*) PLOT=${1#--plot=}; ARGS+=(--plot "$PLOT") ;;
        --plot)   # FILE.png, or the chart docs/performance.rst shows
            if [ $# -gt 1 ] && [[ $2 == *.png ]]; then PLOT=$2; shift
            else PLOT="$PSEUD_ROOT/docs/_static/bench.png"; mkdir -p "$(dirname "$PLOT")"; fi
            ARGS+=(--plot "$PLOT") ;;
        --callgrind) CALLGRIND=1; ARGS+=("$1") ;;
        *) ARGS+=("$1") ;;
    esac
    shift
done

if [ -n "$PLOT" ] && ! "$PEERS/bin/python" -c 'import matplotlib' 2>/dev/null; then
    echo "== installing matplotlib into $PEERS (for --plot; not a pseud-native dependency)"
    peer_pip matplotlib >"$LOGS/matplotlib.log" 2>&1 \
        || { echo "matplotlib failed: see $LOGS/matplotlib.log" >&2; exit 1; }
fi

if [ -n "$CALLGRIND" ] && ! command -v valgrind >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
        echo "--callgrind needs valgrind: sudo apt-get install valgrind" >&2
        exit 1
    fi
    echo "== installing valgrind"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }
fi

# compare_build REV|PATH: the sources into bench/.compare/<id>/src (git archive
# of a commit, or a copy of a directory), built with that tree's own setup.py
# into bench/.compare/<id>/lib by the project's python. Sets COMPARE_LIB and
# COMPARE_LABEL.
compare_build() {
    local what=$1 id label dir
    if [ -d "$what" ]; then
        dir=$(cd "$what" && pwd)
        id=path-$(printf '%s' "$dir" | sha1sum | cut -c1-12)
        label="pseud-native@$(basename "$dir")"
    else
        id=$(git -C "$PSEUD_ROOT" rev-parse --verify "$what^{commit}") \
            || { echo "--compare: $what is neither a directory nor a git revision" >&2; exit 1; }
        label="pseud-native@$what"
    fi
    local out="$BENCH/.compare/$id"
    if [ ! -f "$out/.built" ] || [ -d "$what" ]; then
        echo "== building $label into $out"
        rm -rf "$out/src"
        mkdir -p "$out/src"
        if [ -d "$what" ]; then
            (cd "$dir" && tar --exclude=./build --exclude='./.venv*' --exclude=./bench \
                --exclude=./.git -cf - .) | tar -xf - -C "$out/src"
        else
            git -C "$PSEUD_ROOT" archive "$id" | tar -xf - -C "$out/src"
        fi
        (cd "$out/src" && "$PSEUD_VENV/bin/python" setup.py -q build --build-base "$out/build" \
            --build-lib "$out/lib" >"$out/build.log" 2>&1) \
            || { cat "$out/build.log" >&2; echo "--compare: building $label failed" >&2; exit 1; }
        touch "$out/.built"
    fi
    COMPARE_LIB="$out/lib"
    COMPARE_LABEL=$label
}

if [ -n "$COMPARE" ]; then
    compare_build "$COMPARE"
    ARGS+=(--compare-path "$COMPARE_LIB" --compare-label "$COMPARE_LABEL")
fi

# ---- run
exec "$PSEUD_PY" "$BENCH/suite.py" \
    --native-python "$PSEUD_PY" --native-path "$PSEUD_LIB" \
    --peers-python "$PEERS/bin/python" --raw-c "$RAW_C" \
    --json "$BENCH/results/suite-$(date +%Y%m%d-%H%M%S).json" "${ARGS[@]}"
