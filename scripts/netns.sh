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
#
# The processes are the benchmark suite's own roles (bench/peer.py broker,
# worker, call; the scenarios of bench/scenarios.py): the same code as
# `bash bench/run.sh --only broker`, over veth instead of loopback.
set -euo pipefail
WORKERS=${1:-2}
SECONDS_EACH=${2:-2}
if ! [[ "$WORKERS" =~ ^[1-8]$ ]]; then echo "WORKERS: 1 to 8" >&2; exit 64; fi
if ! [[ "$SECONDS_EACH" =~ ^([1-9]|10)$ ]]; then echo "SECONDS: 1 to 10" >&2; exit 64; fi
if [ "$(id -u)" != 0 ]; then echo "scripts/netns.sh needs root (ip netns)" >&2; exit 1; fi

source "$(dirname "$0")/setup-env.sh"
pseud_setup plain
export PYTHONPATH="$PSEUD_LIB:$PSEUD_ROOT/bench" PYTHONSAFEPATH=1
PEER="$PSEUD_ROOT/bench/peer.py"
ROW=pseud-native

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
    exec 9>&- 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# The broker and workers (bench/peer.py) read the suite's CPU requests on
# stdin and exit when it ends: their stdin is a FIFO held open (fd 9) that
# nothing writes to; the cleanup above kills them.
mkfifo "$WORK/hold"
exec 9<>"$WORK/hold"

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

ROUNDS=$("$PSEUD_PY" -c "import burn; print(burn.calibrate())")
json_field() {   # json_field FIELD...: those fields of the JSON line on stdin
    "$PSEUD_PY" -c 'import json, sys; d = json.loads(sys.stdin.readline()); \
print(*(d[k] for k in sys.argv[1:]))' "$@"
}

# ---- the broker, then the workers, each in its namespace. Started with
# `ip netns exec` directly (not from a shell function): it execs python, so
# $! is the process the cleanup must kill.
ip netns exec "$NS_BROKER" "$PSEUD_PY" "$PEER" broker "$ROW" 'tcp://198.18.0.1:*' \
    --workers "$WORKERS" <"$WORK/hold" >"$WORK/broker" &
PIDS+=($!)
read -r FRONTEND BACKEND < <(first_line "$WORK/broker" | json_field endpoint backend)
echo "broker in $NS_BROKER: frontend $FRONTEND, backend $BACKEND"
for i in $(seq 1 "$WORKERS"); do
    ip netns exec "${TAG}-w$i" "$PSEUD_PY" "$PEER" worker "$ROW" "$BACKEND" \
        --burn "$ROUNDS" <"$WORK/hold" >"$WORK/w$i" &
    PIDS+=($!)
    first_line "$WORK/w$i" >/dev/null
done
for _ in $(seq 300); do          # the broker's second line: all have joined
    [ "$(wc -l <"$WORK/broker")" -ge 2 ] && break
    sleep 0.1
done
[ "$(wc -l <"$WORK/broker")" -ge 2 ] || { echo "the workers did not join" >&2; exit 1; }
echo "$WORKERS workers in their namespaces (198.18.0.11-$((10 + WORKERS))), client at 198.18.0.10"

# ---- the client: each scenario runs SECONDS_EACH, then the client exits.
# It prints "ready" after its warm-up call, waits for "go", prints "done".
# (The caller's side of cpu-64-broker-N is the same for every N.)
for scenario in broker-sequential broker-pipelined cpu-64-broker-1; do
    result=$( (sleep 1; echo go) | timeout $((SECONDS_EACH + 40)) \
        ip netns exec "${TAG}-client" "$PSEUD_PY" "$PEER" call "$ROW" "$scenario" connect \
        "$FRONTEND" --seconds "$SECONDS_EACH" | tail -n1)
    label=$scenario
    [ "$scenario" = cpu-64-broker-1 ] && label="cpu-64 x $WORKERS workers"
    "$PSEUD_PY" -c "import json, sys; r = json.loads(sys.argv[2]); \
print('%-22s %8.0f calls/s over veth' % (sys.argv[1], r['calls'] / r['seconds']))" \
        "$label" "$result"
done
