"""Security plugins (docs/guide/security.rst, docs/guide/plugins.rst).

A plugin is a class registered with ``@register_auth_backend`` under its
``name``, for the client side, the server side or both (see
``pseud.utils.PluginTable``), built as ``cls(rpc)`` when the RPC is. The
built-in ones carry upstream's class names (``PlainForClient``...), and
subclass as upstream's documentation shows.

The core skips calling a plugin whose class sets ``_pseud_noop = True``, so
the default costs nothing per call. The ZAP handler that admits PLAIN and
CURVE peers for the built-in server plugins runs in C (``zap_policy``
names its rule): several servers with different plugins can share a process.
"""
import hmac
import itertools

import zope.interface

from . import _pseud
from ._plugin import PluginBase, identity as _bytes
from .interfaces import (AUTHENTICATED, EMPTY_DELIMITER, HELLO, UNAUTHORIZED, VERSION,
                         IAuthenticationBackend)
from .utils import register_auth_backend

__all__ = ['BaseAuthBackend',
           'NoOpAuthenticationBackendForClient', 'NoOpAuthenticationBackendForServer',
           'PlainForClient', 'PlainForServer', 'TrustedPeerForServer',
           'CurveWithTrustedKeyForClient', 'CurveWithTrustedKeyForServer',
           'CurveWithUntrustedKeyForClient', 'CurveWithUntrustedKeyForServer']

_domains = itertools.count(1)


@zope.interface.implementer(IAuthenticationBackend)
class BaseAuthBackend(PluginBase):
    """Every method the core may call, doing nothing: subclass and override.
    (Upstream's documented plugins define these same methods.)"""

    def configure(self):
        """At the first bind() or connect(): set the socket's security options."""
        pass

    def stop(self):
        """Once, from rpc.stop(), after the socket is closed."""
        pass

    def handle_hello(self, user_id, routing_id, message_uuid, message):
        """A HELLO message arrived; ``message`` is its raw msgpack body."""
        pass

    def handle_authentication(self, user_id, routing_id, message_uuid):
        """A message from a peer that is_authenticated() refused, or an UNAUTHORIZED reply."""
        pass

    def handle_authenticated(self, message):
        """An AUTHENTICATED message arrived, with its raw body."""
        pass

    def save_last_work(self, message):
        """Every outgoing call, as its list of six frames."""
        pass

    def is_authenticated(self, user_id):
        """For every incoming message: may it go further?"""
        return True

    def get_predicate_arguments(self, user_id):
        """For every incoming call: the keyword arguments (dict) for the domain predicates."""
        return {}

    def get_routing_id(self, user_id):
        """For every outgoing call: the routing id that reaches ``user_id``."""
        return user_id

    def register_routing_id(self, user_id, routing_id):
        """For every authenticated incoming message with a user id: where that user is."""
        pass


@register_auth_backend
class NoOpAuthenticationBackendForClient(BaseAuthBackend):
    """No authentication: every peer is anonymous (user id b'')."""

    name = 'noop_auth_backend'
    serves = 'client'
    _pseud_noop = True


@register_auth_backend
class NoOpAuthenticationBackendForServer(NoOpAuthenticationBackendForClient):
    """No authentication, on a server."""

    serves = 'server'


class _RoutedServer(BaseAuthBackend):
    """Server side of a ZAP-checked plugin: a ZAP domain of its own, and
    user id -> routing id learnt from each authenticated message so that
    ``send_to(user_id)`` reaches that client."""

    serves = 'server'
    zap_policy = None

    def __init__(self, rpc):
        super().__init__(rpc)
        self.routing_ids = {}
        self.zap_domain = b'pseud.%d' % next(_domains)

    def configure_mechanism(self, socket):
        raise NotImplementedError

    def configure(self):
        socket = self.rpc.socket
        self.configure_mechanism(socket)
        socket.zap_domain = self.zap_domain
        _pseud.zap_register(self.zap_domain, self)

    def stop(self):
        _pseud.zap_unregister(self.zap_domain, self)

    def is_authenticated(self, user_id):
        # fail closed: b'' is a peer no handshake named (inproc runs none)
        return user_id != b''

    def register_routing_id(self, user_id, routing_id):
        self.routing_ids[user_id] = routing_id

    def get_routing_id(self, user_id):
        return self.routing_ids.get(_bytes(user_id), user_id)


@register_auth_backend
class PlainForClient(BaseAuthBackend):
    """ZeroMQ PLAIN: login ``user_id``, ``password``."""

    name = 'plain'
    serves = 'client'

    def configure(self):
        socket = self.rpc.socket
        socket.plain_username = _bytes(self.rpc.user_id) or b''
        password = _bytes(self.rpc.password)
        # libzmq refuses an empty password option: PLAIN then sends an empty one
        if password:
            socket.plain_password = password


@register_auth_backend
class PlainForServer(_RoutedServer):
    """PLAIN server admitting a peer whose password equals its login."""

    name = 'plain'
    zap_policy = 'plain'

    def configure_mechanism(self, socket):
        socket.plain_server = True


@register_auth_backend
class TrustedPeerForServer(PlainForServer):
    """PLAIN server trusting any login as the peer's user id (the password
    is ignored). Clients use ``plain``."""

    name = 'trusted_peer'
    zap_policy = 'trusted_peer'


@register_auth_backend
class TrustedPeerForClient(PlainForClient):
    """``trusted_peer`` on a client is ``plain``."""

    name = 'trusted_peer'


@register_auth_backend
class CurveWithTrustedKeyForClient(BaseAuthBackend):
    """CURVE with the client's ``public_key``/``secret_key`` and the
    server's ``peer_public_key`` (Z85)."""

    name = 'trusted_curve'
    serves = 'client'

    def configure(self):
        socket = self.rpc.socket
        socket.curve_serverkey = self.rpc.peer_public_key
        socket.curve_publickey = self.rpc.public_key
        socket.curve_secretkey = self.rpc.secret_key


@register_auth_backend
class CurveWithTrustedKeyForServer(_RoutedServer):
    """CURVE server admitting only the client keys of ``known_identities``
    (user id -> key pair or public key; that user id is the peer's).
    Add a client with ``server.auth_backend.known_identities[b'carol'] =
    public_key`` (Z85 or raw), before or after ``bind``."""

    name = 'trusted_curve'
    zap_policy = 'trusted_curve'

    def __init__(self, rpc):
        super().__init__(rpc)
        # as upstream: two generated pairs to start with
        self.known_identities = {b'bob': _pseud.curve_keypair(),
                                 b'alice': _pseud.curve_keypair()}

    def configure_mechanism(self, socket):
        socket.curve_server = True
        socket.curve_publickey = self.rpc.public_key
        socket.curve_secretkey = self.rpc.secret_key


@register_auth_backend
class CurveWithUntrustedKeyForServer(CurveWithTrustedKeyForServer):
    """CURVE server admitting any key, then asking unknown ones to log in:
    their calls get UNAUTHORIZED until a HELLO (login, password) matches
    ``user_map``; that key is then trusted as that login."""

    name = 'untrusted_curve'
    zap_policy = 'untrusted_curve'

    def __init__(self, rpc):
        super().__init__(rpc)
        self.user_map = {}          # login -> password
        self.trusted_keys = {}      # raw public key -> login (read by ZAP)
        self.aliases = {}           # user id seen on the wire -> login

    def is_authenticated(self, user_id):
        return user_id != b'' and (user_id in self.aliases
                                   or user_id in self.trusted_keys.values())

    def _reply(self, routing_id, message_uuid, kind, body):
        self.rpc.send_message([routing_id, EMPTY_DELIMITER, VERSION, message_uuid,
                               kind, body])

    def handle_authentication(self, user_id, routing_id, message_uuid):
        self._reply(routing_id, message_uuid, UNAUTHORIZED, b'Authentication Error')

    def handle_hello(self, user_id, routing_id, message_uuid, message):
        try:
            login, password = self.rpc.packer.unpackb(message)
        except (ValueError, TypeError):
            login = password = None
        login = _bytes(login) if isinstance(login, (bytes, str)) else None
        password = _bytes(password) if isinstance(password, (bytes, str)) else None
        known = {_bytes(k): _bytes(v) for k, v in self.user_map.items()}
        expected = known.get(login) if login is not None else None
        if expected is None or password is None or not hmac.compare_digest(expected, password):
            self._reply(routing_id, message_uuid, UNAUTHORIZED, b'Authentication Error')
            return
        self.aliases[user_id] = login
        try:
            self.trusted_keys[_pseud.z85_decode(user_id)] = login
        except (ValueError, TypeError):
            pass
        self.register_routing_id(login, routing_id)
        self._reply(routing_id, message_uuid, AUTHENTICATED, b'Welcome ' + login)

    def register_routing_id(self, user_id, routing_id):
        self.routing_ids[self.aliases.get(user_id, user_id)] = routing_id


@register_auth_backend
class CurveWithUntrustedKeyForClient(CurveWithTrustedKeyForClient):
    """CURVE client that logs in with HELLO(user_id, password) when the
    server answers UNAUTHORIZED, then replays the call; gives up with
    UnauthorizedError after two tries."""

    name = 'untrusted_curve'
    max_tries = 2

    def __init__(self, rpc):
        super().__init__(rpc)
        self.tries = 0
        self.last_work = None

    def save_last_work(self, message):
        self.last_work = message

    def handle_authentication(self, user_id, routing_id, message_uuid):
        if self.tries >= self.max_tries:
            future = self.rpc.future_pool.get(message_uuid)
            if future is not None:
                future.set_exception(_pseud.UnauthorizedError(
                    'pseud: the server refused our login %r' % (self.rpc.user_id,)))
            return
        self.tries += 1
        body = self.rpc.packer.packb((_bytes(self.rpc.user_id), _bytes(self.rpc.password)))
        self.rpc.send_message([routing_id, EMPTY_DELIMITER, VERSION, message_uuid, HELLO, body])

    def handle_authenticated(self, message):
        self.tries = 0
        work, self.last_work = self.last_work, None
        if work is not None:
            self.rpc.send_message(work)


# pseud-native's earlier names of the same classes
NoOpAuthenticationBackend = NoOpAuthenticationBackendForServer
PlainClient = PlainForClient
PlainServer = PlainForServer
TrustedPeerServer = TrustedPeerForServer
TrustedPeerClient = TrustedPeerForClient
CurveClient = CurveWithTrustedKeyForClient
TrustedCurveServer = CurveWithTrustedKeyForServer
UntrustedCurveClient = CurveWithUntrustedKeyForClient
UntrustedCurveServer = CurveWithUntrustedKeyForServer
