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

run_pytest() {
    echo "== pytest ($variant, $("$PSEUD_PY" -c 'import sys; print(sys.version.split()[0])'))"
    PYTHONPATH="$PSEUD_LIB" "$PSEUD_VENV/bin/pytest" -p no:cacheprovider "$@"
}

if [ "$variant" = asan ]; then
    pseud_setup asan
    # ASan must be loaded first; CPython's own allocations go through malloc
    # so that they are checked too. Leak checks are off: the interpreter
    # keeps much alive at exit on purpose.
    # libstdc++ too: greenlet throws C++ exceptions across switches, and
    # ASan's interceptor of __cxa_throw needs the real one already loaded.
    export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so.6)"
    export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1"
    export PYTHONMALLOC=malloc
    export PSEUD_SANITIZER=address     # tests skip what ASan makes meaningless (RSS)
    run_pytest "$@"
    exit
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
done
if [ "$ran" -eq 0 ]; then
    echo "pseud: none of PSEUD_PYTHONS=$PSEUD_PYTHONS found; found: ${found[*]}" >&2
    exit 1
fi
echo "== Pythons run: $ran; failed: ${failed[*]:-none}"
[ ${#failed[@]} -eq 0 ]
