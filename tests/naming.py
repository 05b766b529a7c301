"""Names no two tests share (registry entries, inproc endpoints, user ids).

Its own module, not only conftest's: a run given both tests/ and
tests/upstream/ paths loads tests/upstream/conftest.py last as the module
`conftest`, and `from conftest import unique` then finds that one."""
import itertools
import uuid

_counter = itertools.count()


def unique(prefix='x'):
    """A name no other test uses (for registry entries, inproc endpoints)."""
    return '%s_%d_%s' % (prefix, next(_counter), uuid.uuid4().hex[:8])
