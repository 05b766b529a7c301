#!/usr/bin/env bash
# Many hosts on one machine: the broker, N workers and a client, each in a
# network namespace of its own, joined by veth pairs to a bridge, so they
# talk over real interfaces rather than loopback (docs/guide/scaling.rst).
#
#   bash scripts/netns.sh [WORKERS=2] [SECONDS=2]      (as root)
#
# Addresses: 198.18.0.0/24 only (RFC 2544's range for network benchmark
# tests), and only inside the namespaces this script creates: the bridge in
# the broker's namespace is 198.18.0.1, host i is 198.18.0.(10+i). Nothing
# is routed out of them. Traffic is bounded: each measurement runs SECONDS
# (at most 10) and every process is killed, and every namespace deleted, on
# exit, whatever happens (trap).
set -euo pipefail
WORKERS=${1:-2}
SECONDS_EACH=${2:-2}
if ! [[ "$WORKERS" =~ ^[1-8]$ ]]; then echo "WORKERS: 1 to 8" >&2; exit 64; fi
if ! [[ "$SECONDS_EACH" =~ ^([1-9]|10)$ ]]; then echo "SECONDS: 1 to 10" >&2; exit 64; fi
if [ "$(id -u)" != 0 ]; then echo "scripts/netns.sh needs root (ip netns)" >&2; exit 1; fi

source "$(dirname "$0")/setup-env.sh"
pseud_setup plain
export PYTHONPATH="$PSEUD_LIB" PYTHONSAFEPATH=1
BENCH="$PSEUD_ROOT/bench/broker_bench.py"

TAG="pn$$"                 # namespaces and links of this run only
NS_BROKER="${TAG}-broker"
NS_HOSTS=()
PIDS=()
WORK=$(mktemp -d)

cleanup() {
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    for ns in "${NS_HOSTS[@]:-}" "$NS_BROKER"; do
        [ -n "$ns" ] && ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# ---- the network: a bridge in the broker's namespace, one veth per host
ip netns add "$NS_BROKER"
ip -n "$NS_BROKER" link set lo up
ip -n "$NS_BROKER" link add br0 type bridge
ip -n "$NS_BROKER" addr add 198.18.0.1/24 dev br0
ip -n "$NS_BROKER" link set br0 up
add_host() {   # add_host NAME INDEX
    local ns="${TAG}-$1" addr="198.18.0.$((10 + $2))"
    ip netns add "$ns"
    NS_HOSTS+=("$ns")
    ip -n "$ns" link set lo up
    ip link add "${TAG}v$2" netns "$NS_BROKER" type veth peer name eth0 netns "$ns"
    ip -n "$NS_BROKER" link set "${TAG}v$2" master br0 up
    ip -n "$ns" addr add "$addr/24" dev eth0
    ip -n "$ns" link set eth0 up
}
add_host client 0
for i in $(seq 1 "$WORKERS"); do add_host "w$i" "$i"; done

# a line from a file a background process writes, within 30 s
first_line() {
    local file=$1
    for _ in $(seq 300); do
        if [ -s "$file" ]; then head -n1 "$file"; return 0; fi
        sleep 0.1
    done
    echo "no output in $file" >&2; return 1
}

ROUNDS=$("$PSEUD_PY" -c "import sys; sys.path.insert(0, '$PSEUD_ROOT/bench'); \
import broker_bench; print(broker_bench.calibrate())")

# ---- the broker, then the workers, each in its namespace. Started with
# `ip netns exec` directly (not from a shell function): it execs python, so
# $! is the process the cleanup must kill.
ip netns exec "$NS_BROKER" "$PSEUD_PY" "$BENCH" broker --host 198.18.0.1 >"$WORK/broker" &
PIDS+=($!)
read -r FRONTEND BACKEND < <(first_line "$WORK/broker")
echo "broker in $NS_BROKER: frontend $FRONTEND, backend $BACKEND"
for i in $(seq 1 "$WORKERS"); do
    ip netns exec "${TAG}-w$i" "$PSEUD_PY" "$BENCH" worker "$BACKEND" --rounds "$ROUNDS" >"$WORK/w$i" &
    PIDS+=($!)
    first_line "$WORK/w$i" >/dev/null
done
sleep 0.5
echo "$WORKERS workers in their namespaces (198.18.0.11-$((10 + WORKERS))), client at 198.18.0.10"

# ---- the client: each scenario runs SECONDS_EACH, then the client exits
for scenario in sequential pipelined cpu; do
    result=$( (sleep 1; echo go) | timeout $((SECONDS_EACH + 40)) \
        ip netns exec "${TAG}-client" "$PSEUD_PY" "$BENCH" client "$FRONTEND" \
        --scenario "$scenario" --seconds "$SECONDS_EACH" | tail -n1)
    "$PSEUD_PY" -c "import json, sys; r = json.loads(sys.argv[2]); \
print('%-12s %8.0f calls/s over veth' % (sys.argv[1], r['calls'] / r['seconds']))" \
        "$scenario" "$result"
done
