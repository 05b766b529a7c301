#!/usr/bin/env bash
# Run the test suite: installs what is missing, builds, runs pytest.
#   bash scripts/test.sh            on every supported CPython found (3.10 to
#                                   3.13: python3.X on PATH or pyenv's), each
#                                   in its own .venv-3.X and build/plain-3.X
#   bash scripts/test.sh --asan     the extension built with AddressSanitizer
#                                   (python3 only: one version is enough there)
#   PSEUD_PYTHONS="3.11 3.13" bash scripts/test.sh   only these versions
#   extra arguments go to pytest (e.g. -k codec)
source "$(dirname "$0")/setup-env.sh"
variant=plain
if [ "${1:-}" = --asan ]; then variant=asan; shift; fi
pseud_interop_venv
cd "$PSEUD_ROOT"
# `python -c` subprocesses of the tests run from the repository root: without
# this, its pseud/ sources (no extension built there) would come before
# PYTHONPATH on sys.path and shadow the build.
export PYTHONSAFEPATH=1
# tests/interop: upstream pseud 1.0.1's python (its own venv); the tests
# run it without this process's PYTHONPATH, LD_PRELOAD and sanitizer settings.
export PSEUD_INTEROP_PYTHON

# the environment of the pytest runs (the sanitizer's, for --asan): theirs
# only, so that pip and compilers run without it
run_env=()

run_pytest() {
    echo "== pytest ($variant, $("$PSEUD_PY" -c 'import sys; print(sys.version.split()[0])'))"
    env "${run_env[@]}" PYTHONPATH="$PSEUD_LIB" "$PSEUD_VENV/bin/pytest" -p no:cacheprovider "$@"
}

# The second pass, on python3's version (and in the --asan run): the tests of
# pseud sharing pyzmq's contexts (docs/guide/calls.rst, "context= and
# inproc with pyzmq") in a venv whose pyzmq is built from source against
# the system libzmq, so that sharing is real there; the main venvs keep
# pyzmq's wheel, which cannot share (what most users have, and what
# tests/test_context.py checks there). Same build ($PSEUD_LIB).
# PSEUD_TEST_SHARED_PYZMQ=1 makes those tests fail, not skip, if that pyzmq
# does not share pseud's libzmq after all (tests/pyzmq_sharing.py).
# The user's options go through (-k, -m, -x...: a -k or -m that selects
# none of these tests is fine here). Paths given select: the pass runs the
# shared tests they name or contain, and is skipped when they name none.
# Under --asan too (seconds, once the venv is built): the C paths of the
# shared default run only there.
SHARED_TESTS=(tests/test_context.py tests/upstream/test_server.py)
shared_pyzmq_pass() {
    local python=$1; shift
    local opts=() picked=() paths=0 arg after_value=0
    for arg in "$@"; do
        if [ "$after_value" = 1 ] || [[ "$arg" == -* ]] || [ ! -e "${arg%%::*}" ]; then
            opts+=("$arg")
            after_value=0
            case "$arg" in -k|-m|-p|-o|-c|--deselect|--ignore|--timeout) after_value=1 ;; esac
            continue
        fi
        paths=1
        local file=${arg%%::*} t
        file=${file#./}; file=${file%/}
        for t in "${SHARED_TESTS[@]}"; do
            if [ "$t" = "$file" ]; then picked+=("$arg")
            elif [[ "$t" == "$file"/* ]]; then picked+=("$t")
            fi
        done
    done
    if [ "$paths" = 1 ] && [ ${#picked[@]} -eq 0 ]; then
        echo "== pytest, pyzmq sharing libzmq: skipped (the paths given name none of ${SHARED_TESTS[*]})"
        return 0
    fi
    [ ${#picked[@]} -gt 0 ] || picked=("${SHARED_TESTS[@]}")
    pseud_shared_pyzmq_venv "$python" || return 1
    echo "== pytest ($variant, pyzmq sharing libzmq: $PSEUD_SHARED_VENV)"
    local rc=0
    env "${run_env[@]}" PSEUD_TEST_SHARED_PYZMQ=1 PYTHONPATH="$PSEUD_LIB" \
        "$PSEUD_SHARED_VENV/bin/pytest" -p no:cacheprovider "${opts[@]}" "${picked[@]}" || rc=$?
    # 5: nothing collected, when the user's -k/-m select none of these
    [ "$rc" -eq 0 ] || [ "$rc" -eq 5 ]
}

if [ "$variant" = asan ]; then
    pseud_setup asan
    # ASan must be loaded first; CPython's own allocations go through malloc
    # so that they are checked too. Leak checks are off: the interpreter
    # keeps much alive at exit on purpose.
    # libstdc++ too: greenlet throws C++ exceptions across switches, and
    # ASan's interceptor of __cxa_throw needs the real one already loaded.
    run_env=("LD_PRELOAD=$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so.6)"
             "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1"
             PYTHONMALLOC=malloc
             PSEUD_SANITIZER=address)   # tests skip what ASan makes meaningless (RSS)
    rc=0
    run_pytest "$@" || rc=1
    shared_pyzmq_pass python3 "$@" || rc=1
    exit $rc
fi

mapfile -t found < <(pseud_pythons)
if [ ${#found[@]} -eq 0 ]; then
    echo "pseud: no CPython 3.10 to 3.13 found (python3.X on PATH or in pyenv)" >&2
    exit 1
fi
primary=$(_python_version python3)
failed=()
ran=0
for line in "${found[@]}"; do
    version=${line%% *} python=${line#* }
    if [ -n "${PSEUD_PYTHONS:-}" ] && [[ " $PSEUD_PYTHONS " != *" $version "* ]]; then
        continue
    fi
    pseud_setup plain "$python"
    ran=$((ran + 1))
    # The packaging tests (sdist into a fresh venv, the auditwheel-repaired
    # wheel) build and install the whole package, minutes each: they run on
    # python3's version only, which is the one scripts/wheel.sh builds for;
    # the rest of the suite runs on every version.
    if [ "$version" != "$primary" ] && [[ " $* " != *" -m "* ]]; then
        run_pytest -m "not packaging" "$@" || failed+=("$version")
    else
        run_pytest "$@" || failed+=("$version")
    fi
    if [ "$version" = "$primary" ]; then
        shared_pyzmq_pass "$python" "$@" || failed+=("$version (pyzmq sharing libzmq)")
    fi
done
if [ "$ran" -eq 0 ]; then
    echo "pseud: none of PSEUD_PYTHONS=$PSEUD_PYTHONS found; found: ${found[*]}" >&2
    exit 1
fi
echo "== Pythons run: $ran; failed: ${failed[*]:-none}"
[ ${#failed[@]} -eq 0 ]
