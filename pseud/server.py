"""pseud.Server: the RPC peer that usually binds."""
from typing import Any

import zope.interface

from .common import BaseRPC
from .interfaces import IServer


@zope.interface.implementer(IServer)
class Server(BaseRPC):
    """An RPC peer whose ROUTER socket's routing id is ``user_id``.

    ``Server('remote').bind('tcp://127.0.0.1:5555')``; register callables,
    ``start()``; call connected clients with ``send_to(user_id)``.
    """

    _is_server = True

    def __init__(self, user_id: str | bytes | None = None, **options: Any) -> None:
        super().__init__(user_id, **options)
