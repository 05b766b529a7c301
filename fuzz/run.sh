#!/usr/bin/env bash
# Build the libFuzzer harnesses and run each for a while.
#   bash fuzz/run.sh [SECONDS=60] [HARNESS...]      (default: all of them)
# Harnesses: wire zap unpack datetime message (fuzz/fuzz_<name>.c). Each is
# built with clang -fsanitize=fuzzer,address,undefined into build/fuzz/ and
# run from its seed corpus (fuzz/corpus/<name>/, never written to: new
# inputs go to build/fuzz/corpus/<name>/). Fails on a crash, a leak, a
# sanitizer report or a timeout; the input is left in build/fuzz/artifacts/.
# FUZZ_ARGS adds libFuzzer flags (e.g. FUZZ_ARGS=-runs=10000000).
source "$(dirname "$0")/../scripts/setup-env.sh"
seconds=${1:-60}
shift || true
harnesses=("$@")
[ ${#harnesses[@]} -eq 0 ] && harnesses=(wire zap unpack datetime message)

# clang 14 is Debian 12's; libFuzzer's runtime is in libclang-rt-14-dev
CLANG=${CLANG:-}
if [ -z "$CLANG" ]; then
    for c in clang-14 clang; do command -v "$c" >/dev/null 2>&1 && CLANG=$c && break; done
fi
if [ -z "$CLANG" ] || ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n){return 0;}' \
        | "$CLANG" -x c -fsanitize=fuzzer - -o /dev/null 2>/dev/null; then
    if [ "$(id -u)" != 0 ]; then
        echo "fuzz: clang with libFuzzer is needed: apt-get install clang-14 libclang-rt-14-dev" >&2
        exit 1
    fi
    echo "== installing clang-14 and libFuzzer"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang-14 libclang-rt-14-dev >/dev/null
    CLANG=clang-14
fi

pseud_system_packages
pseud_venv
cd "$PSEUD_ROOT"
out=build/fuzz
mkdir -p "$out/obj" "$out/artifacts"

SAN="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
CFLAGS="-std=c11 -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Wno-missing-field-initializers -Isrc"
ZMQ_CFLAGS=$(pkg-config --cflags libzmq)
ZMQ_LIBS=$(pkg-config --libs libzmq)
MP_CFLAGS=$(pkg-config --cflags msgpack-c 2>/dev/null || pkg-config --cflags msgpack)
MP_LIBS=$(pkg-config --libs msgpack-c 2>/dev/null || pkg-config --libs msgpack)
# The embedded interpreter of the codec harnesses is the one the virtualenv
# runs on (its libpython3.x.so, found through python3-config --embed), so
# that the venv's site-packages -- dateutil and pytz for the tz allowlist --
# load into it unchanged.
PYBASE=$("$PSEUD_VENV/bin/python" -c 'import sys; print(sys.base_prefix)')
PYCONFIG="$PYBASE/bin/python3-config"
PY_CFLAGS=$("$PYCONFIG" --includes)
PY_LIBS="$("$PYCONFIG" --ldflags --embed) -Wl,-rpath,$("$PSEUD_VENV/bin/python" -c \
    'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')"
PY_SITE=$("$PSEUD_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

# The extension's sources, compiled once for the harnesses that embed
# Python (the pure ones take only the file they test).
build_objs() {
    local objs=()
    for src in src/*.c; do
        local o="$out/obj/$(basename "${src%.c}").o"
        if [ ! -f "$o" ] || [ "$src" -nt "$o" ] || [ -n "$(find src -name '*.h' -newer "$o")" ]; then
            "$CLANG" $CFLAGS ${SAN/fuzzer,/fuzzer-no-link,} $PY_CFLAGS $ZMQ_CFLAGS $MP_CFLAGS \
                -c "$src" -o "$o"
        fi
        objs+=("$o")
    done
    echo "${objs[@]}"
}

build() {
    local name=$1 bin="$out/fuzz_$1"
    case $name in
        wire) "$CLANG" $CFLAGS $SAN $ZMQ_CFLAGS fuzz/fuzz_wire.c src/wire.c $ZMQ_LIBS -o "$bin" ;;
        zap) "$CLANG" $CFLAGS $SAN fuzz/fuzz_zap.c src/zap_request.c -o "$bin" ;;
        unpack|datetime|message)
            local objs
            objs=$(build_objs)
            "$CLANG" $CFLAGS $SAN $PY_CFLAGS $ZMQ_CFLAGS $MP_CFLAGS "fuzz/fuzz_$name.c" \
                fuzz/embed.c $objs $ZMQ_LIBS $MP_LIBS $PY_LIBS -o "$bin" ;;
        *) echo "fuzz: unknown harness $name" >&2; exit 2 ;;
    esac
}

# Python's caches make every input of the harnesses that embed it look like
# a possible leak, and LeakSanitizer's check after each then scans the heap
# (140 instead of 12,000 inputs a second): those fuzz without it, then
# replay everything they found with it (-runs=0 runs each input once, with
# the leak check).
leak_phase() {
    case $1 in unpack|datetime|message) echo replay ;; *) echo inline ;; esac
}

run() {
    local name=$1 leaks=$2
    shift 2
    ASAN_OPTIONS="detect_leaks=$leaks:abort_on_error=1:strict_string_checks=1" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    PYTHONMALLOC=malloc PYTHONPATH="$PY_SITE" \
        "$out/fuzz_$name" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$out/artifacts/${name}-" "$@" "$out/corpus/$name" "fuzz/corpus/$name"
}

failed=()
for name in "${harnesses[@]}"; do
    echo "== fuzz $name: build"
    build "$name"
    mkdir -p "$out/corpus/$name"
    echo "== fuzz $name: ${seconds}s"
    ok=1
    leaks=1
    [ "$(leak_phase "$name")" = replay ] && leaks=0
    run "$name" "$leaks" -max_total_time="$seconds" ${FUZZ_ARGS:-} >"$out/$name.log" 2>&1 || ok=0
    if [ $ok = 1 ] && [ $leaks = 0 ]; then
        echo "== fuzz $name: replaying the corpus with leak checks"
        run "$name" 1 -runs=0 >"$out/$name.leaks.log" 2>&1 || ok=0
        cat "$out/$name.leaks.log" >>"$out/$name.log"
    fi
    grep -E '^(#[0-9]+[[:space:]]+(DONE|INITED)|stat::|==[0-9]+==|SUMMARY|.*runtime error)' \
        "$out/$name.log" || true
    if [ $ok = 1 ]; then
        echo "== fuzz $name: ok"
    else
        echo "== fuzz $name: FAILED (see $out/$name.log, $out/artifacts/)" >&2
        failed+=("$name")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: failed: ${failed[*]}" >&2
    exit 1
fi
