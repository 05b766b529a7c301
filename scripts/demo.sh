#!/usr/bin/env bash
# Run the demo: the user document's server and client, started together.
source "$(dirname "$0")/setup-env.sh"
pseud_setup plain
cd "$PSEUD_ROOT"
export PYTHONPATH="$PSEUD_LIB"
exec "$PSEUD_PY" examples/run_demo.py
