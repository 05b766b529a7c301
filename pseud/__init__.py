"""pseud: RPC over ZeroMQ with msgpack, cooperative with gevent.

A native (C) rebuild of the pure-Python pseud, speaking the same wire
protocol v1. ``import pseud`` needs gevent only when a call is made.
"""
try:
    from . import _pseud  # noqa: F401
except ImportError:
    import importlib.util
    if importlib.util.find_spec(__name__ + '._pseud') is not None:
        raise       # built, but failed to load: that error says why
    # typically: Python started in a clone's root, whose pseud/ has only
    # the Python sources
    raise ImportError(
        'pseud._pseud is not built: run bash scripts/test.sh, or pip install . '
        '(this pseud package is %s)' % (__path__[0],),
        name=__name__ + '._pseud') from None

from . import interfaces, utils  # noqa: F401
from . import auth, heartbeat, predicate  # noqa: F401  (register built-in plugins)
from .broker import Broker
from .client import Client
from .server import Server
from ._pseud import SyncClient, curve_keypair, z85_decode, z85_encode
from ._version import __version__

#: upstream's base class of SyncClient; here the native SyncClient itself
SyncBaseRPC = SyncClient

__all__ = ['Broker', 'Client', 'Server', 'SyncClient', 'SyncBaseRPC', 'curve_keypair',
           'z85_encode', 'z85_decode', '__version__']
