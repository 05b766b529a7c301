"""Types of pseud._pseud, the C extension (src/). Every name the module
exposes is here; tests/test_typing.py checks that against dir() of the
built module, so a name added in C without its stub fails the suite."""
import builtins
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, ClassVar, NamedTuple, final

from typing_extensions import Self

# ---- libzmq constants (socket kinds, options, flags, errno values) ----------
AFFINITY: int
BACKLOG: int
BINDTODEVICE: int
CONFLATE: int
CONNECT_ROUTING_ID: int
CONNECT_TIMEOUT: int
CURVE: int
CURVE_PUBLICKEY: int
CURVE_SECRETKEY: int
CURVE_SERVER: int
CURVE_SERVERKEY: int
DEALER: int
DONTWAIT: int
EAGAIN: int
EFSM: int
EHOSTUNREACH: int
EINVAL: int
EMTHREAD: int
ENOCOMPATPROTO: int
ENOTSOCK: int
ETERM: int
EVENTS: int
FD: int
HANDSHAKE_IVL: int
HEARTBEAT_IVL: int
HEARTBEAT_TIMEOUT: int
HEARTBEAT_TTL: int
IDENTITY: int
IMMEDIATE: int
INVERT_MATCHING: int
IPV6: int
LAST_ENDPOINT: int
LINGER: int
MAXMSGSIZE: int
MECHANISM: int
MORE: int
MULTICAST_HOPS: int
MULTICAST_MAXTPDU: int
NOBLOCK: int
NULL: int
PAIR: int
PLAIN: int
PLAIN_PASSWORD: int
PLAIN_SERVER: int
PLAIN_USERNAME: int
POLLERR: int
POLLIN: int
POLLOUT: int
PROBE_ROUTER: int
PUB: int
PULL: int
PUSH: int
RATE: int
RCVBUF: int
RCVHWM: int
RCVMORE: int
RCVTIMEO: int
RECONNECT_IVL: int
RECONNECT_IVL_MAX: int
RECOVERY_IVL: int
REP: int
REQ: int
REQ_CORRELATE: int
REQ_RELAXED: int
ROUTER: int
ROUTER_HANDOVER: int
ROUTER_MANDATORY: int
ROUTER_RAW: int
ROUTING_ID: int
SNDBUF: int
SNDHWM: int
SNDMORE: int
SNDTIMEO: int
SOCKS_PROXY: int
STREAM: int
STREAM_NOTIFY: int
SUB: int
SUBSCRIBE: int
TCP_KEEPALIVE: int
TCP_KEEPALIVE_CNT: int
TCP_KEEPALIVE_IDLE: int
TCP_KEEPALIVE_INTVL: int
TCP_MAXRT: int
THREAD_SAFE: int
TOS: int
TYPE: int
UNSUBSCRIBE: int
USE_FD: int
XPUB: int
XPUB_MANUAL: int
XPUB_NODROP: int
XPUB_VERBOSE: int
XPUB_VERBOSER: int
XPUB_WELCOME_MSG: int
XSUB: int
ZAP_DOMAIN: int

zmq_version: tuple[int, int, int]

# ---- errors ------------------------------------------------------------------

class ZMQError(Exception):
    """A libzmq call failed."""
    errno: int | None
    strerror: str | None
    def __init__(self, errno: int | None = ..., msg: str | None = ...) -> None: ...

class Again(ZMQError):
    """EAGAIN: nothing to receive / no room to send without blocking."""

class ServiceNotFoundError(Exception): ...
class TimeoutError(Exception): ...
class UnauthorizedError(Exception): ...
class PeerGoneError(ConnectionError): ...
class MessageTooLargeError(ValueError): ...

# ---- futures and proxies -----------------------------------------------------

class Future:
    """A future result compatible with gevent.event.AsyncResult."""
    @property
    def value(self) -> Any: ...
    @property
    def exception(self) -> BaseException | None: ...
    @property
    def exc_info(self) -> tuple[type[BaseException], BaseException, TracebackType | None] | tuple[()]: ...
    def get(self, block: bool = True, timeout: float | None = None) -> Any: ...
    def get_nowait(self) -> Any: ...
    def result(self, timeout: float | None = None) -> Any: ...
    def wait(self, timeout: float | None = None) -> Any: ...
    def ready(self) -> bool: ...
    def done(self) -> bool: ...
    def successful(self) -> bool: ...
    def cancel(self) -> bool: ...
    def cancelled(self) -> bool: ...
    def set(self, value: Any = None) -> None: ...
    def set_exception(self, exception: BaseException | type[BaseException],
                      exc_info: Any = None) -> None: ...
    def rawlink(self, callback: Callable[[Future], object], /) -> None: ...
    def link(self, callback: Callable[[Future], object], /) -> None: ...
    def unlink(self, callback: Callable[[Future], object], /) -> None: ...
    def __call__(self, source: Any) -> None: ...

@final
class AttributeWrapper:
    """Proxy for a remote callable: attribute access extends the dotted
    name, calling it sends the work and returns a future."""
    def __getattr__(self, name: str) -> AttributeWrapper: ...
    def __call__(self, *args: Any, **kwargs: Any) -> Future: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

# ---- registries ----------------------------------------------------------------

@final
class RPCCallable:
    """RPCCallable(func, name, domain='default', with_identity=False)"""
    func: Callable[..., Any]
    name: str
    domain: str
    @property
    def with_identity(self) -> bool: ...
    def __new__(cls, func: Callable[..., Any], name: str, domain: str = 'default',
                with_identity: bool = False) -> Self: ...
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...
    def test(self, *args: Any, **kwargs: Any) -> bool: ...

@final
class Registry:
    """Registry(name='', bases=())"""
    name: str
    bases: tuple[Registry, ...]
    def __new__(cls, name: str = '', bases: Iterable[Registry] = ()) -> Self: ...
    def lookup(self, name: str, /, **predicate_kwargs: Any) -> RPCCallable: ...
    def names(self) -> list[str]: ...
    def register(self, rpc_callable: RPCCallable, /) -> None: ...
    def unregister(self, name: str, domain: str = 'default') -> bool: ...
    def __contains__(self, name: object, /) -> bool: ...
    def __len__(self) -> int: ...

registry: Registry
predicates: dict[str, type]

def register_predicate_class(name: str, cls: type, /) -> type: ...

# ---- msgpack -------------------------------------------------------------------

class ExtType(NamedTuple):
    code: int
    data: bytes

class Packer:
    """Packer(translation_table=None, max_depth=128)"""
    default_translation_table: ClassVar[Mapping[int, tuple[type, Callable[[Any], bytes], Callable[[bytes], Any]]]]
    max_depth: int
    @property
    def translation_table(self) -> dict[int, tuple[type, Callable[[Any], bytes], Callable[[bytes], Any]]]: ...
    def __init__(self, translation_table: Mapping[int, tuple[type, Callable[[Any], bytes], Callable[[bytes], Any]]] | None = None,
                 max_depth: int = 128) -> None: ...
    def packb(self, obj: Any, /) -> bytes: ...
    def unpackb(self, data: bytes, /) -> Any: ...
    def register_ext_handler(self, code: int, cls: type, pack: Callable[[Any], bytes],
                             unpack: Callable[[bytes], Any]) -> None: ...

# ---- sockets -------------------------------------------------------------------

@final
class Frame:
    """A received message frame (recv(copy=False))."""
    @property
    def buffer(self) -> memoryview: ...
    @property
    def bytes(self) -> bytes: ...
    @property
    def more(self) -> bool: ...
    def get(self, property: str | int, /) -> str | int: ...
    def __len__(self) -> int: ...
    def __bytes__(self) -> builtins.bytes: ...

@final
class Context:
    """The process-wide libzmq context of pseud."""
    def __new__(cls) -> Self: ...
    @classmethod
    def instance(cls) -> Context: ...
    def socket(self, kind: int, /) -> Socket: ...
    @property
    def closed(self) -> bool: ...
    @property
    def underlying(self) -> int: ...

@final
class Socket:
    """A libzmq socket, cooperative under gevent; options as attributes."""
    def __new__(cls, context: Context, socket_type: int) -> Self: ...
    @property
    def closed(self) -> bool: ...
    @property
    def context(self) -> Context: ...
    @property
    def underlying(self) -> int: ...
    def bind(self, endpoint: str, /) -> str: ...
    def unbind(self, endpoint: str, /) -> None: ...
    def connect(self, endpoint: str, /) -> None: ...
    def disconnect(self, endpoint: str, /) -> None: ...
    def close(self, linger: int | None = None) -> None: ...
    def getsockopt(self, option: int, /) -> int | bytes: ...
    def setsockopt(self, option: int, value: int | bytes | str, /) -> None: ...
    def get(self, option: int, /) -> int | bytes: ...
    def set(self, option: int, value: int | bytes | str, /) -> None: ...
    def poll(self, timeout: float | None = None, flags: int = ...) -> int: ...
    def send(self, data: Any, flags: int = 0, copy: bool = True, track: bool = False) -> None: ...
    def send_multipart(self, msg_parts: Iterable[Any], flags: int = 0, copy: bool = True,
                       track: bool = False) -> None: ...
    def send_string(self, u: str, flags: int = 0, copy: bool = True,
                    encoding: str = 'utf-8') -> None: ...
    def recv(self, flags: int = 0, copy: bool = True, track: bool = False) -> Any: ...
    def recv_multipart(self, flags: int = 0, copy: bool = True, track: bool = False) -> list[Any]: ...
    def recv_string(self, flags: int = 0, encoding: str = 'utf-8') -> str: ...
    def _debug_state(self) -> dict[str, Any]: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *exc_info: object) -> None: ...
    # socket options as attributes (read, write or both, as libzmq allows)
    affinity: int
    backlog: int
    bindtodevice: bytes
    conflate: int
    connect_routing_id: bytes
    connect_timeout: int
    curve_publickey: bytes
    curve_secretkey: bytes
    curve_server: int
    curve_serverkey: bytes
    events: int
    fd: int
    handshake_ivl: int
    heartbeat_ivl: int
    heartbeat_timeout: int
    heartbeat_ttl: int
    identity: bytes
    immediate: int
    invert_matching: int
    ipv6: int
    last_endpoint: bytes
    linger: int
    maxmsgsize: int
    mechanism: int
    multicast_hops: int
    multicast_maxtpdu: int
    plain_password: bytes
    plain_server: int
    plain_username: bytes
    probe_router: int
    rate: int
    rcvbuf: int
    rcvhwm: int
    rcvmore: int
    rcvtimeo: int
    reconnect_ivl: int
    reconnect_ivl_max: int
    recovery_ivl: int
    req_correlate: int
    req_relaxed: int
    router_handover: int
    router_mandatory: int
    router_raw: int
    routing_id: bytes
    sndbuf: int
    sndhwm: int
    sndtimeo: int
    socks_proxy: bytes
    stream_notify: int
    subscribe: bytes
    tcp_keepalive: int
    tcp_keepalive_cnt: int
    tcp_keepalive_idle: int
    tcp_keepalive_intvl: int
    tcp_maxrt: int
    thread_safe: int
    tos: int
    type: int
    unsubscribe: bytes
    use_fd: int
    xpub_manual: int
    xpub_nodrop: int
    xpub_verbose: int
    xpub_verboser: int
    xpub_welcome_msg: bytes
    zap_domain: bytes

# ---- the RPC core --------------------------------------------------------------

class RPC:
    """Base of Server and Client: a ROUTER socket speaking pseud protocol v1.
    Any other attribute is a proxy for the remote callable of that name."""
    auth_backend: Any
    heartbeat_backend: Any
    last_endpoint: str | None
    packer: Packer
    peer_routing_id: bytes | None
    proxy_to: RPC | None
    registry: Registry
    user_id: bytes | None
    timeout: float
    @property
    def future_pool(self) -> Mapping[bytes, Future]: ...
    @property
    def initialized(self) -> bool: ...
    @property
    def pending_sends(self) -> int: ...
    @property
    def socket(self) -> Socket: ...
    @property
    def started(self) -> bool: ...
    def __init__(self, user_id: str | bytes | None = None,
                 peer_routing_id: str | bytes | None = None, is_server: bool = False,
                 timeout: float = 5.0, registry: Registry | None = None,
                 packer: Packer | None = None, proxy_to: RPC | None = None,
                 auth_backend: Any = None, heartbeat_backend: Any = None,
                 max_message_size: int = ..., probe_router: bool = False,
                 context: Any = None) -> None: ...
    def bind(self, endpoint: str, /) -> str: ...
    def connect(self, endpoint: str, /) -> None: ...
    def connect_broker(self, endpoint: str, broker_public_key: str | bytes | None = None,
                       public_key: str | bytes | None = None,
                       secret_key: str | bytes | None = None) -> None: ...
    def disconnect(self, endpoint: str, /) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def close(self) -> None: ...
    def send_message(self, frames: Iterable[bytes | bytearray | memoryview | str], /) -> None: ...
    def send_to(self, user_id: str | bytes, /) -> AttributeWrapper: ...
    def send_work(self, user_id: str | bytes | None, name: str, /, *args: Any,
                  **kwargs: Any) -> Future: ...
    def _hold_monitor(self, flag: bool, /) -> None: ...
    def __getattr__(self, name: str) -> AttributeWrapper: ...

class Broker:
    """Broker core: see pseud.Broker."""
    @property
    def frontend_socket(self) -> Socket: ...
    @property
    def backend_socket(self) -> Socket: ...
    secured: bool
    def __init__(self, service_id: str | bytes, max_in_flight: int = 64,
                 max_queue: int = 1000, timeout: float = 5.0, heartbeat: float = 0.5, *,
                 max_message_size: int = ..., zap: bool = True) -> None: ...
    def bind_frontend(self, endpoint: str, /) -> str: ...
    def bind_backend(self, endpoint: str, /) -> str: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def stats(self) -> dict[str, Any]: ...

class SyncClient:
    """Blocking RPC client over a REQ socket; `client.name(*args)` returns
    the result itself."""
    packer: Packer
    password: str | bytes | None
    peer_routing_id: str | bytes | None
    security_plugin: str
    user_id: str | bytes | None
    timeout: float
    def __init__(self, peer_routing_id: str | bytes | None = None, timeout: float = 5,
                 user_id: str | bytes | None = None, password: str | bytes | None = None,
                 security_plugin: str = 'noop_auth_backend',
                 translation_table: Any = None, context: Any = None, io_loop: Any = None,
                 public_key: str | bytes | None = None, secret_key: str | bytes | None = None,
                 peer_public_key: str | bytes | None = None, heartbeat_plugin: Any = None,
                 registry: Any = None, proxy_to: Any = None, loop: Any = None) -> None: ...
    def bind(self, endpoint: str | bytes, /) -> str: ...
    def connect(self, endpoint: str, /) -> None: ...
    def disconnect(self, endpoint: str, /) -> None: ...
    def close(self) -> None: ...
    def stop(self) -> None: ...
    def send_work(self, name: str, /, *args: Any, **kwargs: Any) -> Any: ...
    def __getattr__(self, name: str) -> Any: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *exc_info: object) -> None: ...

# ---- functions -------------------------------------------------------------------

def curve_keypair() -> tuple[bytes, bytes]: ...
def z85_encode(data: bytes, /) -> bytes: ...
def z85_decode(data: bytes | str, /) -> bytes: ...
def format_remote_traceback(text: object, /) -> str: ...
def has(capability: str, /) -> bool: ...
def strerror(errno: int, /) -> str: ...
def zap_register(domain: bytes, backend: Any, /) -> None: ...
def zap_unregister(domain: bytes, backend: Any, /) -> None: ...
def _log_limit_reset() -> None: ...
