#!/usr/bin/env bash
# Run the test suite: installs what is missing, builds, runs pytest.
#   bash scripts/test.sh            normal build
#   bash scripts/test.sh --asan     the extension built with AddressSanitizer
#   extra arguments go to pytest (e.g. -k codec)
source "$(dirname "$0")/setup-env.sh"
variant=plain
if [ "${1:-}" = --asan ]; then variant=asan; shift; fi
pseud_setup "$variant"
pseud_interop_venv
cd "$PSEUD_ROOT"
export PYTHONPATH="$PSEUD_LIB"
# `python -c` subprocesses of the tests run from the repository root: without
# this, its pseud/ sources (no extension built there) would come before
# PYTHONPATH on sys.path and shadow the build.
export PYTHONSAFEPATH=1
# tests/interop: upstream pseud 1.0.1's python (its own venv); the tests
# run it without this process's PYTHONPATH, LD_PRELOAD and sanitizer settings.
export PSEUD_INTEROP_PYTHON
if [ "$variant" = asan ]; then
    # ASan must be loaded first; CPython's own allocations go through malloc
    # so that they are checked too. Leak checks are off: the interpreter
    # keeps much alive at exit on purpose.
    # libstdc++ too: greenlet throws C++ exceptions across switches, and
    # ASan's interceptor of __cxa_throw needs the real one already loaded.
    export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so.6)"
    export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1"
    export PYTHONMALLOC=malloc
    export PSEUD_SANITIZER=address     # tests skip what ASan makes meaningless (RSS)
fi
echo "== pytest ($variant)"
exec "$PSEUD_VENV/bin/pytest" -p no:cacheprovider "$@"
