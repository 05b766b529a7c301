"""What Server and Client share: option handling around the native RPC core.

Everything per call (proxies, framing, packing, futures, deadlines, dispatch)
is in the C type ``pseud._pseud.RPC``; this module only turns the upstream
constructor options into that core's arguments, once per instance. Also
upstream's helpers of the same module: ``DummyFuture``,
``internal_exceptions``, ``UTC``, ``format_remote_traceback``.
"""
from __future__ import annotations

import datetime
import functools
import logging
from typing import Any, Callable

from . import _pseud, interfaces
from ._plugin import identity as _identity
from ._typing import RegisterRPC
from .packer import Packer
from .utils import (auth_backends, create_local_registry, heartbeat_backends,
                    register_rpc)

AttributeWrapper = _pseud.AttributeWrapper
format_remote_traceback = _pseud.format_remote_traceback

#: names of the exceptions of pseud.interfaces: an ERROR reply naming one of
#: them raises that class (others raise the builtin of that name, or
#: Exception)
internal_exceptions: tuple[str, ...] = tuple(sorted(
    name for name, value in vars(interfaces).items()
    if isinstance(value, type) and issubclass(value, Exception)))

#: a UTC tzinfo (upstream's was dateutil's tzutc(); datetime's own is the
#: same offset and needs no extra package)
UTC = datetime.timezone.utc

logger = logging.getLogger(__name__)

_NOT_GIVEN: Any = object()


class DummyFuture:
    """Stands for a future that is gone (its call timed out): an exception
    for it is logged with its traceback, then raised, as upstream's did."""

    def set_exception(self, exception: BaseException) -> None:
        """Log ``exception`` with its traceback, then raise it."""
        try:
            raise exception
        except BaseException:
            logger.exception('pseud: exception for a call nobody waits for')
            raise


class BaseRPC(_pseud.RPC):
    """Common constructor of Server and Client: the options of
    docs/guide/calls.rst, and what plugins use (docs/guide/plugins.rst)."""

    _is_server = False

    def __init__(self, user_id: str | bytes | None = None, routing_id: Any = _NOT_GIVEN,
                 peer_routing_id: str | bytes | None = None, context: Any = None,
                 io_loop: Any = None, security_plugin: str = 'noop_auth_backend',
                 public_key: str | bytes | None = None,
                 secret_key: str | bytes | None = None,
                 peer_public_key: str | bytes | None = None, timeout: float = 5,
                 password: str | bytes | None = None,
                 heartbeat_plugin: str = 'noop_heartbeat_backend',
                 proxy_to: _pseud.RPC | None = None,
                 registry: _pseud.Registry | None = None,
                 translation_table: Any = None,
                 max_message_size: int = 64 * 1024 * 1024, loop: Any = None,
                 heartbeat_interval: float | None = None,
                 probe_router: bool = False) -> None:
        if routing_id is not _NOT_GIVEN:
            raise TypeError(
                "pseud: routing_id is not an option: a Server's routing id is "
                "its user_id, a Client's is chosen by ZeroMQ")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError('pseud: timeout must be a number of seconds, not %r'
                            % (timeout,))
        if timeout <= 0:
            raise ValueError('pseud: timeout must be positive, not %r' % (timeout,))
        if registry is None:
            name = _identity(user_id, 'user_id') or b''
            registry = create_local_registry(name.decode('utf-8', 'replace'))
        # context= decides where the RPC's own socket lives (the core
        # shares a pyzmq context when it can: docs/guide/calls.rst); the
        # gevent hub is the loop: io_loop= and loop= are accepted, unused
        self._context_option = context
        self.io_loop = io_loop
        self.loop = loop
        # read back as given (str stays str); the core gets bytes
        self._user_id_option = user_id
        self._peer_routing_id_option = peer_routing_id
        self.routing_id = user_id if self._is_server else None
        self.security_plugin = security_plugin
        self.heartbeat_plugin = heartbeat_plugin
        # seconds between heartbeats, for plugins that send them ('heartbeat')
        self.heartbeat_interval = heartbeat_interval
        self.public_key = _identity(public_key, 'public_key')
        self.secret_key = _identity(secret_key, 'secret_key')
        self.peer_public_key = _identity(peer_public_key, 'peer_public_key')
        self.password = password
        self.translation_table = translation_table
        packer = Packer(translation_table) if translation_table else None
        # plugins are adapters of the RPC: they may read the options above
        side = 'server' if self._is_server else 'client'
        auth = auth_backends.lookup(security_plugin, side)(self)
        heartbeat = heartbeat_backends.lookup(heartbeat_plugin, side)(self)
        super().__init__(
            user_id=_identity(user_id, 'user_id'),
            peer_routing_id=_identity(peer_routing_id, 'peer_routing_id'),
            is_server=self._is_server, timeout=float(timeout),
            registry=registry, packer=packer, proxy_to=proxy_to,
            auth_backend=auth, heartbeat_backend=heartbeat,
            max_message_size=max_message_size, probe_router=bool(probe_router),
            context=context)

    @property
    def user_id(self) -> str | bytes | None:  # type: ignore[override]
        """This peer's identity, as given (the core holds it as bytes)."""
        return self._user_id_option

    @property
    def peer_routing_id(self) -> str | bytes | None:  # type: ignore[override]
        """The routing id calls go to, as given (the core holds bytes)."""
        return self._peer_routing_id_option

    # ---- what plugins use (docs/guide/plugins.rst) --------------------------

    @property
    def context(self) -> _pseud.Context:
        """pseud's own process-wide libzmq context, for helper sockets.

        ``rpc.context.socket(kind)``, as upstream's plugins use it.
        Read-only. Where the RPC's own socket lives is decided apart
        (``context=``, or pyzmq's shared default: docs/guide/calls.rst);
        helper sockets always stay here. Given back as ``context=``, it
        means the same as none."""
        return _pseud.Context.instance()

    def create_periodic_callback(self, callback: Callable[[], object],
                                 seconds: float) -> Any:
        """Call ``callback()`` every ``seconds`` until ``.kill()``."""
        import gevent

        def repeat() -> None:
            while True:
                gevent.sleep(seconds)
                callback()
        return gevent.spawn(repeat)

    def create_later_callback(self, callback: Callable[[], object],
                              seconds: float) -> Any:
        """Call ``callback()`` once after ``seconds``, unless ``.kill()``-ed."""
        import gevent
        return gevent.spawn_later(seconds, callback)

    def read_forever(self, socket: _pseud.Socket,
                     callback: Callable[[list[Any]], object], copy: bool = False) -> Any:
        """Call ``callback(frames)`` for each message ``socket`` receives.

        Runs in a greenlet (returned) until the socket is closed or the
        greenlet is ``.kill()``-ed."""
        import gevent

        def read() -> None:
            while not socket.closed:
                try:
                    frames = socket.recv_multipart(copy=copy)
                except _pseud.ZMQError:
                    if socket.closed:
                        return
                    raise
                callback(frames)
        return gevent.spawn(read)

    @property
    def register_rpc(self) -> RegisterRPC:
        """register_rpc bound to this instance's own registry."""
        return functools.partial(register_rpc, registry=self.registry)

    def __enter__(self) -> BaseRPC:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return '<%s %r>' % (type(self).__name__,
                            self.user_id if self._is_server
                            else self.peer_routing_id)
