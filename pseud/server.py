"""pseud.Server: the RPC peer that usually binds."""
from __future__ import annotations

from typing import Any

import zope.interface

from .common import BaseRPC
from .interfaces import IServer


@zope.interface.implementer(IServer)
class Server(BaseRPC):
    """An RPC peer whose ROUTER socket's routing id is ``user_id``.

    ``Server('remote').bind('tcp://127.0.0.1:5555')``; register callables,
    ``start()``; call connected clients with ``send_to(user_id)``.

    ``Server('remote').connect_broker('tcp://broker:5556')`` instead makes it
    one worker of a ``pseud.Broker`` serving 'remote' (docs/guide/scaling.rst).
    """

    _is_server = True

    def __init__(self, user_id: str | bytes | None = None, **options: Any) -> None:
        super().__init__(user_id, **options)

    def connect_broker(self, endpoint: str, broker_public_key: str | bytes | None = None,
                       public_key: str | bytes | None = None,
                       secret_key: str | bytes | None = None) -> None:
        """Serve as a worker of the Broker whose backend is at ``endpoint``.

        Instead of binding: call it before any bind/connect (it may be called
        again for more brokers of the same service). The broker admits
        clients and passes on each caller's user id (``with_identity``,
        predicates and ``send_to`` work as on a direct server). With
        ``broker_public_key`` (the broker's backend key, Z85) the link is
        CURVE, with this worker's own pair (``public_key``/``secret_key``,
        by default the Server's), which the broker lists in its
        ``worker_keys``."""
        if getattr(self.auth_backend, 'zap_policy', None) is not None:
            raise ValueError(
                'pseud: a worker does not authenticate its broker with %r: give the '
                'security plugin to the Broker (its frontend), and leave the worker '
                "the default, or a plugin that does not configure the socket "
                '(e.g. one that only gives predicate arguments)' % (self.security_plugin,))
        if broker_public_key is None:
            return super().connect_broker(endpoint)
        public_key = public_key if public_key is not None else self.public_key
        secret_key = secret_key if secret_key is not None else self.secret_key
        if public_key is None or secret_key is None:
            raise ValueError('pseud: CURVE to the broker needs this worker\'s own key '
                             'pair: Server(id, public_key=..., secret_key=...)')
        return super().connect_broker(endpoint, broker_public_key, public_key, secret_key)
