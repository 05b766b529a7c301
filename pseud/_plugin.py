"""What security and heartbeat plugins share: built as ``cls(rpc)`` when
the RPC is, configured when its socket exists, stopped with it.

``pseud.auth.BaseAuthBackend`` and ``pseud.heartbeat.BaseHeartbeatBackend``
add the hooks of their kind (docs/guide/plugins.rst lists what the core
calls and when).
"""
from __future__ import annotations

from typing import Any


class PluginBase:
    """A plugin of one RPC: ``self.rpc`` is that RPC (upstream's adapters
    took the same single argument)."""

    def __init__(self, rpc: Any) -> None:
        self.rpc = rpc

    def configure(self) -> None:
        """Called once the RPC's socket exists, before its first
        bind/connect: set socket options, start helper tasks."""

    def stop(self) -> None:
        """Called when the RPC stops: end what ``configure`` started."""


def identity(value: str | bytes | None, what: str = 'identity') -> bytes | None:
    """str or bytes -> bytes, None stays None: how user ids, routing ids,
    passwords and CURVE keys go to libzmq and on the wire (str is UTF-8)."""
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode('utf-8')
    raise TypeError('pseud: %s must be str or bytes, not %s'
                    % (what, type(value).__name__))
