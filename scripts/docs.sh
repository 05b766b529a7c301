#!/usr/bin/env bash
# Build the documentation into build/docs: installs what is missing (as
# test.sh does), builds the extension (the API page imports it), then runs
# sphinx-build with warnings as errors and every cross-reference checked.
#   bash scripts/docs.sh [extra sphinx-build arguments]
source "$(dirname "$0")/setup-env.sh"
pseud_setup plain
cd "$PSEUD_ROOT"
export PSEUD_DOCS_LIB="$PSEUD_LIB"
export PYTHONSAFEPATH=1     # the repository's pseud/ sources must not shadow the build
echo "== sphinx-build -> build/docs"
exec "$PSEUD_VENV/bin/python" -m sphinx -E -W -n --keep-going -q -b html "$@" docs build/docs
