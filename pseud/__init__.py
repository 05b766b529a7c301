"""pseud: RPC over ZeroMQ with msgpack, cooperative with gevent.

A native (C) rebuild of the pure-Python pseud, speaking the same wire
protocol v1. ``import pseud`` needs gevent only when a call is made.
"""
from . import interfaces, utils  # noqa: F401
from . import auth, heartbeat, predicate  # noqa: F401  (register built-in plugins)
from .client import Client
from .server import Server
from ._pseud import SyncClient, curve_keypair, z85_decode, z85_encode
from ._version import __version__

__all__ = ['Client', 'Server', 'SyncClient', 'curve_keypair', 'z85_encode',
           'z85_decode', '__version__']
