"""Security backends for upstream pseud 1.0.1, written against upstream's
plugin API, for tests/interop/test_upstream_security.py.

Imported by upstream_peer.py (--plugin-module upstream_plugins) in the
interop environment, never by the project's tests: upstream 1.0.1 ships
only the noop backend, so the PLAIN and CURVE backends that pseud-native
has built in are defined here the way an upstream user would.

Upstream's plugin API (pseud/common.py of 1.0.1): a backend is a zope
adapter of IClient or IServer to IAuthenticationBackend, registered under
its `name`, built as cls(rpc). Upstream awaits `stop()` (gathered in
BaseRPC.stop), `handle_authentication()`, `handle_hello()` (when the peer is
not authenticated) and `handle_authenticated()`; it calls `configure()`
(from connect/bind, before the socket connects or binds),
`is_authenticated()`, `save_last_work()`, `get_predicate_arguments()`,
`get_routing_id()` and `register_routing_id()` without awaiting them.
`self.rpc.socket` is a zmq.asyncio socket.

    plain           (client) ZeroMQ PLAIN: login rpc.user_id, rpc.password
    trusted_curve   (client) CURVE: rpc.public_key/secret_key, server key
                    rpc.peer_public_key (Z85)
    plain           (server) PLAIN server; a ZAP handler of its own on
                    the rpc's context admits a login equal to its password
                    (pseud-native's `plain` rule); the peer's user id is
                    its login, mapped to its routing id for send_to().

The server backend also registers two RPCs (in upstream's global registry,
which every rpc's local registry falls back to) so that a test can make
the upstream server call its caller back by authenticated user id:
`plugin.call_me_back(name, *args)` and `plugin.callback_results()`.
"""
import asyncio
import logging

import zmq
import zope.component
import zope.interface

from pseud.interfaces import IAuthenticationBackend, IClient, IServer
from pseud.utils import register_auth_backend, register_rpc

logger = logging.getLogger(__name__)

ZAP_ENDPOINT = 'inproc://zeromq.zap.01'
ZAP_DOMAIN = b'pseud.interop'


def _bytes(value):
    if value is None or isinstance(value, bytes):
        return value
    return str(value).encode('utf-8')


class _Backend:
    """What every backend does by default: nothing, and admit everyone
    (the ZAP handshake has already decided who got in)."""

    def __init__(self, rpc):
        self.rpc = rpc

    def configure(self):
        pass

    async def stop(self):
        pass

    async def handle_hello(self, user_id, routing_id, message_uuid, message):
        pass

    async def handle_authentication(self, user_id, routing_id, message_uuid):
        pass

    async def handle_authenticated(self, message):
        pass

    def is_authenticated(self, user_id):
        return True

    def save_last_work(self, message):
        pass

    def get_predicate_arguments(self, user_id):
        return {}

    def get_routing_id(self, user_id):
        return user_id

    def register_routing_id(self, user_id, routing_id):
        pass


# --- clients ------------------------------------------------------------------

# the client backends of this process, newest last (a peer runs one client)
CLIENTS = []


@register_auth_backend
@zope.interface.implementer(IAuthenticationBackend)
@zope.component.adapter(IClient)
class PlainClient(_Backend):
    name = 'plain'

    def configure(self):
        CLIENTS.append(self)
        socket = self.rpc.socket
        socket.plain_username = _bytes(self.rpc.user_id) or b''
        password = _bytes(self.rpc.password)
        if password:
            # an empty password is what PLAIN sends when none is set
            socket.plain_password = password


@register_auth_backend
@zope.interface.implementer(IAuthenticationBackend)
@zope.component.adapter(IClient)
class CurveClient(_Backend):
    name = 'trusted_curve'

    def configure(self):
        CLIENTS.append(self)
        socket = self.rpc.socket
        socket.curve_serverkey = _bytes(self.rpc.peer_public_key)
        socket.curve_publickey = _bytes(self.rpc.public_key)
        socket.curve_secretkey = _bytes(self.rpc.secret_key)


# --- server -------------------------------------------------------------------

# the server backends of this process, newest last (a peer runs one server)
SERVERS = []


@register_auth_backend
@zope.interface.implementer(IAuthenticationBackend)
@zope.component.adapter(IServer)
class PlainServer(_Backend):
    """PLAIN server with its ZAP handler (one a context: libzmq allows a
    single handler bound at ZAP_ENDPOINT)."""
    name = 'plain'

    def __init__(self, rpc):
        super().__init__(rpc)
        self.routing_ids = {}
        self.zap_socket = None
        self.zap_task = None
        self.zap_log = []       # (login, admitted) for each ZAP request
        self.callbacks = []

    def configure(self):
        socket = self.rpc.socket
        socket.plain_server = True
        socket.zap_domain = ZAP_DOMAIN
        # bound before the rpc socket binds: no handshake can come first
        self.zap_socket = self.rpc.context.socket(zmq.REP)
        self.zap_socket.linger = 0
        self.zap_socket.bind(ZAP_ENDPOINT)
        self.zap_task = self.rpc.loop.create_task(self._serve_zap())
        SERVERS.append(self)

    def admit(self, login, password):
        return bool(login) and login == password

    async def _serve_zap(self):
        while True:
            frames = await self.zap_socket.recv_multipart()
            # version, request id, domain, address, identity, mechanism,
            # credentials...
            version, request_id, domain, _, _, mechanism = frames[:6]
            credentials = frames[6:]
            login = password = None
            if mechanism == b'PLAIN' and len(credentials) == 2:
                login, password = credentials
            ok = (version == b'1.0' and domain == ZAP_DOMAIN
                  and login is not None and self.admit(login, password))
            self.zap_log.append((login, ok))
            if ok:
                reply = [b'1.0', request_id, b'200', b'OK', login, b'']
            else:
                reply = [b'1.0', request_id, b'400', b'Refused', b'', b'']
            await self.zap_socket.send_multipart(reply)

    async def stop(self):
        if self.zap_task is not None:
            self.zap_task.cancel()
            try:
                await self.zap_task
            except asyncio.CancelledError:
                pass
            self.zap_task = None
        if self.zap_socket is not None:
            self.zap_socket.close(linger=0)
            self.zap_socket = None
        if self in SERVERS:
            SERVERS.remove(self)

    def register_routing_id(self, user_id, routing_id):
        # upstream calls this for every message whose frame has a User-Id
        self.routing_ids[user_id] = routing_id

    def get_routing_id(self, user_id):
        return self.routing_ids.get(_bytes(user_id), user_id)


@register_rpc(name='plugin.call_me_back', with_identity=True)
def call_me_back(user_id, name, *args):
    """The upstream server calls its caller back by user id (send_to),
    as a task: upstream awaits handlers in its only reader task, which
    must stay free to read the reply."""
    backend = SERVERS[-1]
    rpc = backend.rpc

    async def call():
        try:
            # send_work maps the user id through get_routing_id, as send_to does
            value = await rpc.send_work(user_id, name, *args)
        except Exception as exc:
            backend.callbacks.append(('error', type(exc).__name__, str(exc)))
        else:
            backend.callbacks.append(('ok', value))

    asyncio.ensure_future(call())
    return user_id


@register_rpc(name='plugin.callback_results')
def callback_results():
    return list(SERVERS[-1].callbacks)


@register_rpc(name='plugin.login')
def login():
    """Which upstream client this is (its own user id; under PLAIN/CURVE
    an upstream client sees no User-Id on what it receives)."""
    return CLIENTS[-1].rpc.user_id


@register_rpc(name='plugin.zap_log')
def zap_log():
    return list(SERVERS[-1].zap_log)
