#!/usr/bin/env bash
# Run the test suite: installs what is missing, builds, runs pytest.
#   bash scripts/test.sh            normal build
#   bash scripts/test.sh --asan     the extension built with AddressSanitizer
#   extra arguments go to pytest (e.g. -k codec)
source "$(dirname "$0")/setup-env.sh"
variant=plain
if [ "${1:-}" = --asan ]; then variant=asan; shift; fi
pseud_setup "$variant"
cd "$PSEUD_ROOT"
export PYTHONPATH="$PSEUD_LIB"
# child processes of the tests must import the build, not the source tree
# in the current directory (python -c would put it first)
export PYTHONSAFEPATH=1
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
