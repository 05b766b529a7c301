"""pseud.Server: the RPC peer that usually binds."""
from typing import Any

from .common import BaseRPC


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

    def connect_broker(self, endpoint: str) -> None:
        """Serve as a worker of the Broker whose backend is at ``endpoint``.

        Instead of binding: call it before any bind/connect (it may be called
        again for more brokers of the same service). The broker admits
        clients and passes on each caller's user id (``with_identity``,
        predicates and ``send_to`` work as on a direct server)."""
        if getattr(self.auth_backend, 'zap_policy', None) is not None:
            raise ValueError(
                'pseud: a worker does not authenticate its broker with %r: give the '
                'security plugin to the Broker (its frontend), and leave the worker '
                "the default, or a plugin that does not configure the socket "
                '(e.g. one that only gives predicate arguments)' % (self.security_plugin,))
        return super().connect_broker(endpoint)
