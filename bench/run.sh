#!/usr/bin/env bash
# Benchmark: pseud-native next to raw pyzmq + gevent, same run, ratios.
source "$(dirname "$0")/../scripts/setup-env.sh"
pseud_setup plain
cd "$PSEUD_ROOT"
export PYTHONPATH="$PSEUD_LIB"
mkdir -p bench/results
exec "$PSEUD_PY" bench/bench_calls.py --json "bench/results/calls-$(date +%Y%m%d-%H%M%S).json" "$@"
