"""Upstream's gevent flavour: ``from pseud._gevent import Client, Server``
keeps working, with that flavour's timing.

pseud-native has one flavour (gevent); these classes are ``pseud.Client``
and ``pseud.Server`` plus one behaviour of upstream's gevent module: the
first ``start()`` of an RPC yields 0.2 s to the hub (upstream slept there
so that its reader greenlet and the connections got going), which code
written against that module, upstream's own tests among it, may count on.
``pseud.Client``/``pseud.Server`` start without that pause.
"""
from . import client as _client
from . import server as _server
from .common import BaseRPC

__all__ = ['Client', 'Server', 'GeventBaseRPC']

#: seconds the first start() yields, as upstream's gevent flavour did
FIRST_START_PAUSE = 0.2


class GeventBaseRPC(BaseRPC):
    """BaseRPC whose first ``start()`` yields as upstream's gevent one did."""

    _paused_once = False

    def start(self) -> None:
        """Start the RPC; the first time, yield 0.2 s to the hub."""
        super().start()
        if not self._paused_once:
            self._paused_once = True
            import gevent
            gevent.sleep(FIRST_START_PAUSE)


class Client(GeventBaseRPC, _client.Client):
    __doc__ = _client.Client.__doc__


class Server(GeventBaseRPC, _server.Server):
    __doc__ = _server.Server.__doc__
