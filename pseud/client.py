"""pseud.Client: the RPC peer that usually connects."""
from typing import Any

import zope.interface

from .common import BaseRPC
from .interfaces import IClient


@zope.interface.implementer(IClient)
class Client(BaseRPC):
    """An RPC peer calling the server whose routing id is ``peer_routing_id``.

    ``Client('remote').connect(endpoint)``; then ``client.name(*args)``
    returns a future (``.get()`` waits for the result).
    """

    _is_server = False

    def __init__(self, peer_routing_id: str | bytes | None = None,
                 **options: Any) -> None:
        super().__init__(peer_routing_id=peer_routing_id, **options)
