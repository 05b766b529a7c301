#!/usr/bin/env bash
# The benchmark suite, one command:  bash bench/run.sh [--quick] [suite.py options]
# Sets up pseud-native like the tests do, a separate venv for the peer rows
# (bench/.venv-peers), compiles the raw-c row, then runs bench/suite.py.
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

# ---- run
ARGS=()
for a in "$@"; do ARGS+=("$a"); done
exec "$PSEUD_PY" "$BENCH/suite.py" \
    --native-python "$PSEUD_PY" --native-path "$PSEUD_LIB" \
    --peers-python "$PEERS/bin/python" --raw-c "$RAW_C" \
    --json "$BENCH/results/suite-$(date +%Y%m%d-%H%M%S).json" "${ARGS[@]}"
