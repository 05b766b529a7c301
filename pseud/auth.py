"""Security plugins (SPEC section 6). The core skips calling a plugin whose
class sets ``_pseud_noop = True``, so the default costs nothing per call."""
from .utils import register_auth_backend


@register_auth_backend
class NoOpAuthenticationBackend:
    """No authentication: every peer is anonymous (user id b'')."""

    name = 'noop_auth_backend'
    _pseud_noop = True

    def __init__(self, rpc):
        self.rpc = rpc

    def configure(self):
        pass

    def stop(self):
        pass

    def handle_hello(self, user_id, routing_id, message_uuid, message):
        pass

    def handle_authentication(self, user_id, routing_id, message_uuid):
        pass

    def handle_authenticated(self, message):
        pass

    def save_last_work(self, message):
        pass

    def is_authenticated(self, user_id):
        return True

    def get_predicate_arguments(self, user_id):
        return {}

    def get_routing_id(self, user_id):
        return user_id

    def register_routing_id(self, user_id, routing_id):
        pass
