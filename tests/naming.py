"""Names no two tests share (registry entries, inproc endpoints, user ids).

Its own module, imported as `from naming import unique`, not from conftest:
a run given both tests/ and tests/upstream/ paths loads
tests/upstream/conftest.py last as the module `conftest`, which has no
`unique`."""
import itertools
import uuid

_counter = itertools.count()


def unique(prefix='x'):
    """A name no other test uses (for registry entries, inproc endpoints)."""
    return '%s_%d_%s' % (prefix, next(_counter), uuid.uuid4().hex[:8])
