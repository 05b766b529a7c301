"""Protocol constants (docs/protocol.rst), exceptions and interfaces of pseud.

The interfaces are ``zope.interface`` interfaces (zope.interface comes
with gevent; zope.component is not needed) declaring what the core calls
on plugins and offers to them, as upstream's did: the built-in plugins
declare them, ``zope.interface.verify.verifyClass`` checks a plugin
against them, and plugins written in upstream's documented style
(``@implementer(IAuthenticationBackend)``, ``@adapter(IClient)``) work
unchanged.
"""
import zope.interface

from ._pseud import ServiceNotFoundError as ServiceNotFoundError  # noqa: F401
from ._pseud import TimeoutError as TimeoutError  # noqa: F401
from ._pseud import UnauthorizedError as UnauthorizedError  # noqa: F401

VERSION = b'v1'
EMPTY_DELIMITER = b''

OK = b'\x01'
HELLO = b'\x02'
WORK = b'\x03'
AUTHENTICATED = b'\x04'
HEARTBEAT = b'\x06'
ERROR = b'\x10'
UNAUTHORIZED = b'\x11'

Attribute = zope.interface.Attribute


class IAuthenticationBackend(zope.interface.Interface):
    """A security plugin: what the core calls (docs/guide/plugins.rst).

    Besides these, the core calls ``handle_authentication(user_id,
    routing_id, message_uuid)`` for a message from a peer that
    ``is_authenticated`` refused, when the plugin defines it (upstream's
    interface did not declare it either).
    """

    rpc = Attribute('The RPC this plugin belongs to.')

    def configure():
        """Adapt the RPC's socket (mechanism, keys, ZAP) before it is used."""

    def stop():
        """Stop whatever configure started."""

    def handle_hello(user_id, routing_id, message_uuid, message):
        """A HELLO (login, password) arrived: reply AUTHENTICATED or
        UNAUTHORIZED to the peer."""

    def handle_authenticated(message):
        """Our login was accepted (AUTHENTICATED received)."""

    def save_last_work(message):
        """A WORK message is about to be sent: keep it to send again once
        authenticated."""

    def is_authenticated(user_id):
        """True if messages of this peer may be handled."""

    def get_predicate_arguments(user_id):
        """Keyword arguments (a dict) given to the domain predicates of the
        callables this peer calls."""

    def get_routing_id(user_id):
        """The routing id to reach the peer known as ``user_id``."""

    def register_routing_id(user_id, routing_id):
        """Remember that ``user_id`` is reached through ``routing_id``."""


class IHeartbeatBackend(zope.interface.Interface):
    """A heartbeat plugin: what the core calls (docs/guide/heartbeats.rst)."""

    rpc = Attribute('The RPC this plugin belongs to.')

    def handle_heartbeat(user_id, routing_id):
        """A message (every authenticated one counts) came from this peer."""

    def handle_timeout(user_id, routing_id):
        """This peer has been silent too long (called by the plugin itself)."""

    def configure():
        """Start the plugin, once the RPC's socket exists."""

    def stop():
        """Stop every task the plugin started."""


class IBaseRPC(zope.interface.Interface):
    """What an RPC peer offers its plugins and its programmer."""

    user_id = Attribute('This peer\'s identity, as given.')
    context = Attribute('The libzmq context for helper sockets.')
    security_plugin = Attribute('Name of the security plugin.')
    public_key = Attribute('Z85 public key of the CURVE pair.')
    secret_key = Attribute('Z85 secret key of the CURVE pair.')
    heartbeat_plugin = Attribute('Name of the heartbeat plugin.')
    proxy_to = Attribute('Another RPC to which unknown calls are forwarded.')
    registry = Attribute('The registry of callables of this peer.')
    timeout = Attribute('Seconds to wait for a reply.')

    def connect(endpoint):
        """Connect the socket to ``endpoint``."""

    def bind(endpoint):
        """Bind the socket to ``endpoint``."""

    def send_work(user_id, name, *args, **kw):
        """Call ``name(*args, **kw)`` on the peer ``user_id``; a future."""

    def send_message(message):
        """Send a list of frames on the socket (for plugins)."""

    def register_rpc(func=None, name=None, domain='default', registry=None):
        """Register a callable for this RPC only."""

    def start():
        """Start reading the socket and the plugins' tasks."""

    def stop():
        """Stop everything started, plugins included."""

    def read_forever(socket, callback, copy=False):
        """Call ``callback(frames)`` for each message of ``socket``."""

    def create_periodic_callback(callback, timer):
        """Call ``callback()`` every ``timer`` seconds; returns a task."""

    def create_later_callback(callback, timer):
        """Call ``callback()`` once in ``timer`` seconds; returns a task."""


class IClient(IBaseRPC):
    """An RPC peer that calls one server."""

    peer_routing_id = Attribute('Routing id of the server called, as given.')
    peer_public_key = Attribute('Z85 public key of the server (CURVE).')
    password = Attribute('Password sent with user_id as login.')


class IServer(IBaseRPC):
    """An RPC peer known by its user_id."""


class IRPCCallable(zope.interface.Interface):
    """A registered callable: name, domain, and the callable itself."""

    func = Attribute('The callable.')
    name = Attribute('The name it is called by.')
    domain = Attribute('The predicate domain guarding it.')

    def __call__(*args, **kw):
        """Run the callable."""

    def test(*args, **kw):
        """True if the domain's predicate allows this call."""


class IRPCRoute(zope.interface.Interface):
    """Marker of a registered name (upstream's registry key)."""


class IPredicate(zope.interface.Interface):
    """Allows or refuses a call of the callables of its domain."""

    def test(*args, **kw):
        """True to allow the call."""
