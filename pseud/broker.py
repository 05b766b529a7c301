"""pseud.Broker: one service on many worker processes (docs/guide/scaling.rst).

Clients connect to the frontend exactly as to ``Server(service_id)``;
workers are ordinary Servers of that id that call
``server.connect_broker(backend_endpoint)`` instead of ``bind``. The routing
itself is the C type ``pseud._pseud.Broker``: this module only turns the
options into its arguments and sets up the frontend's security plugin.
"""
from __future__ import annotations

from typing import Any

from . import _pseud
from .auth import _RoutedServer
from ._plugin import identity as _identity
from .utils import auth_backends

__all__ = ['Broker']

# the ZAP policies (zap.c) that decide everything in the handshake: the
# broker admits their peers without running Python per message
_BROKERABLE = ('plain', 'trusted_peer', 'trusted_curve')


class _SocketPeer:
    """What a server-side security plugin reads from the RPC it adapts,
    for one of the broker's sockets."""

    _is_server = True

    def __init__(self, broker: Broker, side: str, user_id: bytes | None,
                 public_key: bytes | None, secret_key: bytes | None) -> None:
        self._broker = broker
        self._side = side
        self.user_id = user_id
        self.public_key = public_key
        self.secret_key = secret_key
        self.password: bytes | None = None

    @property
    def socket(self) -> _pseud.Socket:
        sock: _pseud.Socket = getattr(self._broker._core, self._side + '_socket')
        return sock


# How many calls one worker runs at once by default. 64 rather than the
# 16 of the first version: 100 calls pipelined through one worker ran at
# about 60,000 calls/s with 16 (the worker got its calls a few at a
# time, as each reply freed a place) and about 70,000 with 32 to 128, on
# the project's 2-core machine (docs/guide/scaling.rst).
DEFAULT_MAX_IN_FLIGHT = 64


class Broker:
    """A load-balancing broker for the service ``service_id``.

    ``Broker('svc', frontend='tcp://*:5555', backend='tcp://*:5556')``;
    then ``start()`` to route from the gevent hub of this process, or
    ``run()`` to route until ``stop()`` or Ctrl-C (its own process).

    max_in_flight: calls a worker runs at once (least-outstanding choice
    below this). max_queue: calls that may wait for a free worker; past it
    a call gets ERROR RuntimeError at once. timeout: how long a call may
    wait in the queue (and a worker's call to a client may take), seconds.
    heartbeat: ZMTP heartbeat interval on both sockets (0: off); a peer
    silent for three intervals is disconnected. security_plugin,
    public_key, secret_key: as for a Server, at the frontend; the built-in
    ZAP-checked plugins ('plain', 'trusted_peer', 'trusted_curve') are
    supported, and the caller's user id reaches the worker. worker_keys
    (name -> public key), backend_public_key, backend_secret_key: CURVE on
    the backend, admitting only those workers
    (``worker.connect_broker(backend, broker_public_key=...)``).
    """

    def __init__(self, service_id: str | bytes, frontend: str | None = None,
                 backend: str | None = None, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT, max_queue: int = 1000,
                 timeout: float = 5.0, heartbeat: float = 0.5,
                 security_plugin: str = 'noop_auth_backend',
                 public_key: str | bytes | None = None, secret_key: str | bytes | None = None,
                 max_message_size: int = 64 * 1024 * 1024,
                 worker_keys: dict[Any, Any] | None = None,
                 backend_public_key: str | bytes | None = None,
                 backend_secret_key: str | bytes | None = None) -> None:
        for name, value in (('max_in_flight', max_in_flight), ('max_queue', max_queue)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError('pseud: Broker %s must be an int, not %r' % (name, value))
        sid = _identity(service_id, 'service_id')
        if sid is None:
            raise TypeError('pseud: Broker needs a service id (str or bytes), not None')
        self.service_id: bytes = sid
        plugin = auth_backends.lookup(security_plugin, 'server')
        noop = getattr(plugin, '_pseud_noop', False)
        # ZAP-checked sockets stay in pseud's own context, where the ZAP
        # handler is; else the one of every peer without context=
        # (docs/guide/calls.rst, "context= and inproc with pyzmq")
        zap = not noop or worker_keys is not None or backend_public_key is not None
        self._core = _pseud.Broker(self.service_id, max_in_flight, max_queue, float(timeout),
                                   float(heartbeat), max_message_size=max_message_size,
                                   zap=zap)
        self.security_plugin = security_plugin
        self.auth_backend: Any = None
        self.backend_auth: Any = None
        self.frontend_endpoint: str | None = None
        self.backend_endpoint: str | None = None
        self._running: Any = None
        if not noop:
            if not (isinstance(plugin, type) and issubclass(plugin, _RoutedServer)
                    and plugin.zap_policy in _BROKERABLE):
                self._core.stop()
                raise ValueError(
                    'pseud: the broker admits peers in the ZAP handler only: use '
                    "security_plugin='plain', 'trusted_peer' or 'trusted_curve' "
                    '(or a subclass of them), not %r' % (security_plugin,))
            peer = _SocketPeer(self, 'frontend', self.service_id,
                               _identity(public_key, 'public_key'),
                               _identity(secret_key, 'secret_key'))
            self.auth_backend = plugin(peer)
            try:
                self.auth_backend.configure()
            except BaseException:
                self._core.stop()
                raise
            self._core.secured = True
        if worker_keys is not None or backend_public_key is not None:
            self._secure_backend(worker_keys, backend_public_key, backend_secret_key)
        if frontend is not None:
            self.bind_frontend(frontend)
        if backend is not None:
            self.bind_backend(backend)

    def _secure_backend(self, worker_keys: dict[Any, Any] | None,
                        public_key: str | bytes | None, secret_key: str | bytes | None) -> None:
        """CURVE on the backend: only the workers whose keys are listed join."""
        if worker_keys is None or public_key is None or secret_key is None:
            self.stop()
            raise ValueError('pseud: CURVE between broker and workers needs worker_keys '
                             '(name -> worker public key), backend_public_key and '
                             'backend_secret_key together')
        plugin = auth_backends.lookup('trusted_curve', 'server')
        self.backend_auth = plugin(_SocketPeer(self, 'backend', None,
                                               _identity(public_key, 'backend_public_key'),
                                               _identity(secret_key, 'backend_secret_key')))
        self.backend_auth.known_identities = {
            _identity(name, 'a worker name'): key for name, key in worker_keys.items()}
        try:
            self.backend_auth.configure()
        except BaseException:
            self.stop()
            raise

    def bind_frontend(self, endpoint: str) -> str:
        """Where clients connect; returns the endpoint bound (port 0 / '*' resolved)."""
        self.frontend_endpoint = self._core.bind_frontend(endpoint)
        return self.frontend_endpoint

    def bind_backend(self, endpoint: str) -> str:
        """Where workers connect; returns the endpoint bound."""
        self.backend_endpoint = self._core.bind_backend(endpoint)
        return self.backend_endpoint

    def start(self) -> Broker:
        """Route from this process's gevent hub (returns at once)."""
        self._core.start()
        return self

    def run(self) -> None:
        """Route until stop() (from another greenlet) or KeyboardInterrupt."""
        import gevent.event
        self._running = gevent.event.Event()
        self.start()
        try:
            self._running.wait()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        """Close both sockets; calls still queued or running are forgotten
        (their callers time out). Idempotent."""
        # the socket closes before its ZAP domain goes, as a server's does
        self._core.stop()
        for plugin in (self.auth_backend, self.backend_auth):
            if plugin is not None:
                plugin.stop()
        if self._running is not None:
            self._running.set()

    def stats(self) -> dict[str, Any]:
        """Counters: routed, replied, queued, in_flight, rejected, expired,
        lost (calls answered ERROR because their worker went away),
        bad_frontend, bad_backend, anonymous, to_clients, joined, and
        workers: routing id -> {'in_flight', 'served'}."""
        return self._core.stats()

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return '<Broker %r %s -> %s>' % (self.service_id, self.frontend_endpoint,
                                         self.backend_endpoint)
