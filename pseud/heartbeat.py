"""Heartbeat plugins (SPEC section 7)."""
from .utils import register_heartbeat_backend


@register_heartbeat_backend
class NoOpHeartbeatBackend:
    """No heartbeating."""

    name = 'noop_heartbeat_backend'
    _pseud_noop = True

    def __init__(self, rpc):
        self.rpc = rpc

    def configure(self):
        pass

    def stop(self):
        pass

    def handle_heartbeat(self, user_id, routing_id):
        pass

    def handle_timeout(self, user_id, routing_id):
        pass
