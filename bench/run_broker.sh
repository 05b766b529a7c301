#!/usr/bin/env bash
# The broker's scenarios (bench/broker_bench.py), one command:
#   bash bench/run_broker.sh [--seconds 2] [--repeat 3] [--json FILE]
# Builds pseud-native like the tests do, then runs the driver on that build.
source "$(dirname "$0")/../scripts/setup-env.sh"
pseud_setup plain
export PYTHONPATH="$PSEUD_LIB" PYTHONSAFEPATH=1
exec "$PSEUD_PY" "$PSEUD_ROOT/bench/broker_bench.py" "$@"
