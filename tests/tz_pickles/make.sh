#!/usr/bin/env bash
# Regenerate the dateutil 2.x pickles of this directory:
#   bash tests/tz_pickles/make.sh
# For each python-dateutil version below, a throwaway environment in a
# temporary directory gets that release from PyPI (`pip install
# python-dateutil==X`: a venv on Python 3, `pip install --target` on Python
# 2.7, which has no venv module), and write.py pickles a datetime in
# dateutil.tz.gettz('Europe/Paris') and that tzinfo, at every protocol from
# 2 to the interpreter's highest, as upstream pseud peers do. The zone is
# read from the machine's /usr/share/zoneinfo (Debian's tzdata, whose files
# carry the version 1 data that dateutil 2.x reads).
# The 2.9.0 wheel does not import on Python 2 (a py3-only _version.py);
# 2.9.0.post0, the same code, does: Python 2.7 gets that one.
# The committed files were made on Debian 12 with CPython 3.11.7 and
# 2.7.18 (pyenv), python-dateutil 2.8.2 and 2.9.0 (2.9.0.post0 on 2.7).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
versions="2.8.2 2.9.0"

py3=${PYTHON3:-python3}
py2=${PYTHON2:-}
if [ -z "$py2" ]; then
    # python2.7 on PATH may be a pyenv shim that refuses to run: try it
    for c in python2.7 "$HOME"/.pyenv/versions/2.7*/bin/python2.7; do
        if "$c" -c 'import sys; assert sys.version_info[:2] == (2, 7)' 2>/dev/null; then
            py2=$c
            break
        fi
    done
fi
for v in $versions; do
    "$py3" -m venv "$tmp/py3-$v"
    "$tmp/py3-$v/bin/pip" install -q "python-dateutil==$v"
    "$tmp/py3-$v/bin/python" "$here/write.py" "$here"
    if [ -n "$py2" ]; then
        v2=$v
        [ "$v" = 2.9.0 ] && v2=2.9.0.post0
        "$py2" -m pip install -q --target "$tmp/py2-$v" "python-dateutil==$v2" six
        PYTHONPATH="$tmp/py2-$v" "$py2" "$here/write.py" "$here"
    else
        echo "make.sh: no Python 2.7 found: its pickles are left as they are" >&2
    fi
done
