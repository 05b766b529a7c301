"""Protocol constants (docs/protocol.rst), exceptions and plugin markers of pseud.

The markers are zope interfaces when zope.interface is installed, so that
plugins written in upstream's documented style (``@implementer(IClient)``...)
work unchanged; without zope they are plain marker classes.
"""
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

_MARKERS = ('IBaseRPC', 'IClient', 'IServer', 'IAuthenticationBackend',
            'IHeartbeatBackend', 'IPredicate', 'IRPCCallable', 'IRPCRoute')

try:
    import zope.interface as _zi
except ImportError:  # zope is optional: plain markers
    class IBaseRPC:
        """Marker: an RPC peer."""

    class IClient(IBaseRPC):
        """Marker: the client side of a plugin."""

    class IServer(IBaseRPC):
        """Marker: the server side of a plugin."""

    class IAuthenticationBackend:
        """Marker: a security plugin."""

    class IHeartbeatBackend:
        """Marker: a heartbeat plugin."""

    class IPredicate:
        """Marker: a predicate plugin."""

    class IRPCCallable:
        """Marker: a registered callable."""

    class IRPCRoute:
        """Marker: a registered route."""
else:
    class IBaseRPC(_zi.Interface):
        """An RPC peer."""

    class IClient(IBaseRPC):
        """The client side of a plugin."""

    class IServer(IBaseRPC):
        """The server side of a plugin."""

    class IAuthenticationBackend(_zi.Interface):
        """A security plugin."""

    class IHeartbeatBackend(_zi.Interface):
        """A heartbeat plugin."""

    class IPredicate(_zi.Interface):
        """A predicate plugin."""

    class IRPCCallable(_zi.Interface):
        """A registered callable."""

    class IRPCRoute(_zi.Interface):
        """A registered route."""
