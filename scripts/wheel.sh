#!/usr/bin/env bash
# Build a binary wheel of pseud-native that runs without libzmq installed:
# pip builds it against the system's libzmq and msgpack-c, then auditwheel
# copies the shared libraries it needs (libzmq and what libzmq links to;
# msgpack-c is used through its header-only packing functions, so there is
# nothing of it to copy) into the wheel's pseud_native.libs/ and points the
# extension at them, under a manylinux tag this machine's glibc satisfies.
#   bash scripts/wheel.sh [OUTDIR]     (default dist/) -> prints the wheel's path
source "$(dirname "$0")/setup-env.sh"
outdir=${1:-$PSEUD_ROOT/dist}
pseud_system_packages
pseud_venv
tools=${PSEUD_TOOLS_VENV:-$PSEUD_ROOT/.venv-tools}
ensure_venv "$tools" "$PSEUD_ROOT/scripts/wheel-tools.txt" >&2

raw=$(mktemp -d)
trap 'rm -rf "$raw"' EXIT
echo "== building the wheel" >&2
"$PSEUD_VENV/bin/python" -m pip wheel -q --disable-pip-version-check --no-deps \
    -w "$raw" "$PSEUD_ROOT" >&2
wheel=$(ls "$raw"/pseud_native-*.whl)

# `auditwheel show` names the most compatible manylinux tag the wheel's
# symbol versions allow on this machine; repair under that one.
show=$("$tools/bin/auditwheel" show "$wheel")
plat=$(printf '%s\n' "$show" | grep -oE '"(many|musl)linux_[0-9]+_[0-9]+_[a-z0-9_]+"' | head -1 | tr -d '"')
if [ -z "$plat" ]; then
    printf '%s\n' "$show" >&2
    echo "pseud: auditwheel found no manylinux tag for $wheel" >&2
    exit 1
fi
echo "== repairing for $plat" >&2
mkdir -p "$outdir"
PATH="$tools/bin:$PATH" "$tools/bin/auditwheel" repair --plat "$plat" \
    -w "$outdir" "$wheel" >&2
repaired=$(ls -t "$outdir"/pseud_native-*"$plat"*.whl | head -1)
"$tools/bin/auditwheel" show "$repaired" >&2
echo "$repaired"
