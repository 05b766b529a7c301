"""What plugins see of an RPC (docs/guide/plugins.rst), beyond
tests/test_security.py: rpc.socket options, rpc.context helper sockets,
read_forever, send_message, timers, z85/curve helpers, predicates and
routing through a custom security backend, heartbeat plugins, the
unauthenticated path, plugin failures and stop().

Over tcp and inproc where the row applies; libzmq runs no security
mechanism on inproc, so the rows about security run over tcp and ipc."""
import errno
import logging
import tempfile
import time

import gevent
import pytest

import pseud
from pseud import _pseud
from pseud.auth import BaseAuthBackend, TrustedPeerServer
from pseud.heartbeat import BaseHeartbeatBackend
from pseud.interfaces import (AUTHENTICATED, EMPTY_DELIMITER, ERROR, HEARTBEAT, HELLO,
                              OK, VERSION, WORK, ServiceNotFoundError, UnauthorizedError)
from pseud.utils import (auth_backends, get_rpc_callable, heartbeat_backends,
                         register_auth_backend, register_heartbeat_backend,
                         register_predicate)

from naming import unique

pytestmark = pytest.mark.timeout(30)

TRANSPORTS = ['tcp', 'inproc']
# libzmq runs no security mechanism on inproc, and the built-in secured
# servers refuse anonymous peers there (see test_security.py): the rows
# about security run over tcp and ipc
SECURE_TRANSPORTS = ['tcp', 'ipc']
SHORT = 0.5        # timeout of calls that are expected to get no reply


def endpoint_for(transport):
    if transport == 'tcp':
        return 'tcp://127.0.0.1:*'
    if transport == 'ipc':
        return 'ipc://%s/%s' % (tempfile.gettempdir(), unique('surface'))
    return 'inproc://%s' % unique('surface')


def expected_user(transport, name):
    """The user id a server sees for a PLAIN login."""
    return name


@pytest.fixture
def helpers(request):
    """helpers(kind) -> a Socket of the RPCs' context, closed at teardown."""
    made = []

    def factory(kind, linger=0):
        sock = _pseud.Context.instance().socket(kind)
        sock.linger = linger
        made.append(sock)
        return sock

    yield factory
    for sock in made:
        if not sock.closed:
            sock.close()


@pytest.fixture
def plugin(request):
    """plugin(table_register, cls) registers cls (name made unique by the
    caller) and unregisters it at teardown."""
    names = []

    def factory(register, cls):
        register(cls)
        names.append(cls.name)
        return cls

    yield factory
    for name in names:
        auth_backends.unregister(name)
        heartbeat_backends.unregister(name)


def recv_within(sock, seconds):
    """The next multipart message of `sock` (bytes), or None after `seconds`."""
    try:
        with gevent.Timeout(seconds):
            return sock.recv_multipart()
    except gevent.Timeout:
        return None


def wait_for(predicate, seconds=5.0, step=0.01):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        gevent.sleep(step)
    return predicate()


def plain_client(make_client, server, bound, login, **options):
    return make_client(server.user_id, bound, security_plugin='plain',
                       user_id=login, password=options.pop('password', login), **options)


# =================================================== rpc.socket options

@pytest.mark.parametrize('transport', TRANSPORTS)
def test_server_socket_identity_is_its_user_id(make_server, make_client, transport):
    server, bound = make_server(endpoint=endpoint_for(transport))
    sock = server.socket
    assert sock.identity == server.user_id
    assert sock.routing_id == server.user_id
    assert sock.type == _pseud.ROUTER == 6
    assert sock.linger == 0                  # stop() closes with linger 0
    assert sock.mechanism == _pseud.NULL == 0
    assert server.socket is sock             # one view per socket
    # the identity is what a client addresses
    server.register_rpc(name='ping')(lambda: 'pong')
    client = make_client(sock.identity, bound)
    assert client.ping().get() == 'pong'


def test_socket_linger_is_writable_and_reads_back(make_server):
    server, _ = make_server()
    server.socket.linger = 250
    assert server.socket.linger == 250
    server.socket.linger = 0
    assert server.socket.linger == 0


@pytest.mark.parametrize('server_plugin', ['plain', 'trusted_peer'])
@pytest.mark.parametrize('transport', SECURE_TRANSPORTS)
def test_plain_options_after_configure(make_server, make_client, transport, server_plugin):
    server, bound = make_server(endpoint=endpoint_for(transport), security_plugin=server_plugin)

    @server.register_rpc(with_identity=True)
    def whoami(user_id):
        return user_id

    assert server.socket.mechanism == _pseud.PLAIN == 1
    assert server.socket.plain_server == 1
    assert server.socket.zap_domain == server.auth_backend.zap_domain
    client = plain_client(make_client, server, bound, 'opt_user', password='opt_user')
    sock = client.socket
    assert sock.mechanism == _pseud.PLAIN
    assert sock.plain_server == 0
    assert sock.plain_username == b'opt_user'
    assert sock.plain_password == b'opt_user'
    assert client.whoami().get() == expected_user(transport, b'opt_user')


def test_plain_client_with_empty_password_leaves_it_unset(make_server, make_client):
    server, bound = make_server(security_plugin='trusted_peer')
    client = plain_client(make_client, server, bound, 'nopass', password='')
    assert client.socket.mechanism == _pseud.PLAIN
    assert client.socket.plain_username == b'nopass'
    assert client.socket.plain_password == b''
    server.register_rpc(name='ping')(lambda: 'pong')
    assert client.ping().get() == 'pong'


@pytest.mark.parametrize('transport', SECURE_TRANSPORTS)
def test_curve_options_after_configure(make_server, make_client, transport):
    public, secret = pseud.curve_keypair()
    server, bound = make_server(endpoint=endpoint_for(transport),
                                security_plugin='trusted_curve',
                                public_key=public, secret_key=secret)
    server.register_rpc(name='whoami', with_identity=True)(lambda user_id: user_id)
    sock = server.socket
    assert sock.mechanism == _pseud.CURVE == 2
    assert sock.curve_server == 1
    assert sock.curve_publickey == public
    assert sock.curve_secretkey == secret
    bob_public, bob_secret = server.auth_backend.known_identities[b'bob']
    client = make_client(server.user_id, bound, security_plugin='trusted_curve',
                         public_key=bob_public, secret_key=bob_secret,
                         peer_public_key=public)
    csock = client.socket
    assert csock.mechanism == _pseud.CURVE
    assert csock.curve_server == 0
    assert csock.curve_serverkey == public
    assert csock.curve_publickey == bob_public
    assert csock.curve_secretkey == bob_secret
    assert client.whoami().get() == expected_user(transport, b'bob')


def test_socket_before_bind_raises_runtime_error():
    server = pseud.Server(unique('unbound'))
    client = pseud.Client(unique('unbound'))
    try:
        with pytest.raises(RuntimeError):
            server.socket
        with pytest.raises(RuntimeError):
            client.socket
    finally:
        server.stop()
        client.stop()


@pytest.mark.parametrize('transport', TRANSPORTS)
def test_socket_is_closed_after_stop(make_server, make_client, transport):
    server, bound = make_server(endpoint=endpoint_for(transport))
    client = make_client(server.user_id, bound)
    views = [server.socket, client.socket]
    assert not any(view.closed for view in views)
    server.stop()
    client.stop()
    assert all(view.closed for view in views)
    for rpc, view in ((server, views[0]), (client, views[1])):
        with pytest.raises(RuntimeError):
            rpc.socket
        with pytest.raises(_pseud.ZMQError):
            view.linger
        with pytest.raises(_pseud.ZMQError):
            view.send(b'x')


# ============================================== rpc.context helper sockets

def test_context_socket_takes_pyzmq_kind_integers(make_server, helpers):
    server, _ = make_server()
    assert server.context is _pseud.Context.instance()
    kinds = {'PAIR': 0, 'PUB': 1, 'SUB': 2, 'REQ': 3, 'REP': 4, 'DEALER': 5,
             'ROUTER': 6, 'PULL': 7, 'PUSH': 8, 'XPUB': 9, 'XSUB': 10}
    for name, number in kinds.items():
        assert getattr(_pseud, name) == number
        sock = server.context.socket(number)
        try:
            assert sock.type == number
            assert sock.context is server.context
        finally:
            sock.close()
        assert sock.closed
    with pytest.raises(_pseud.ZMQError):
        server.context.socket(12345)


@pytest.mark.parametrize('transport', TRANSPORTS)
def test_helper_pair_is_cooperative_while_rpc_serves(make_server, make_client, helpers,
                                                     transport):
    server, bound = make_server(endpoint=endpoint_for(transport))

    @server.register_rpc
    def slow_double(x):
        gevent.sleep(0.001)
        return x * 2

    client = make_client(server.user_id, bound)
    a = server.context.socket(_pseud.PAIR)
    b = server.context.socket(_pseud.PAIR)
    try:
        a.linger = b.linger = 0
        name = 'inproc://%s' % unique('pair')
        a.bind(name)
        b.connect(name)
        received = []

        def echo():
            # blocks in recv (cooperatively) before anything is sent
            while True:
                message = b.recv()
                if message == b'end':
                    return
                b.send(message.upper())

        def talk():
            for i in range(30):
                a.send(b'msg%d' % i)
                received.append(a.recv())
            a.send(b'end')

        echoer = gevent.spawn(echo)
        gevent.sleep(0.01)
        assert not echoer.dead      # parked in recv, the hub keeps running
        # calls are served while the echoer is parked
        assert [client.slow_double(i).get() for i in range(5)] == [0, 2, 4, 6, 8]
        talker = gevent.spawn(talk)
        futures = [client.slow_double(i) for i in range(50)]
        assert [f.get() for f in futures] == [2 * i for i in range(50)]
        gevent.joinall([talker, echoer], timeout=10, raise_error=True)
        assert received == [b'MSG%d' % i for i in range(30)]
    finally:
        a.close()
        b.close()


# ============================================================ read_forever

@pytest.mark.parametrize('copy', [False, True])
@pytest.mark.parametrize('transport', TRANSPORTS)
def test_read_forever_gets_every_message_until_closed(make_server, helpers, transport, copy):
    server, _ = make_server()
    pull = helpers(_pseud.PULL)
    push = helpers(_pseud.PUSH)
    endpoint = pull.bind(endpoint_for(transport)) or pull.last_endpoint.decode()
    push.connect(endpoint)
    got = []
    handle = server.read_forever(pull, got.append, copy=copy)
    sent = [[b'one'], [b'two', b'parts'], [b'three', b'', b'frames']]
    for message in sent:
        push.send_multipart(message)
    assert wait_for(lambda: len(got) == len(sent))
    for message in got:
        assert isinstance(message, list)
        for frame in message:
            if copy:
                assert type(frame) is bytes
            else:
                assert isinstance(frame, _pseud.Frame)
    as_bytes = [[f if copy else f.bytes for f in message] for message in got]
    assert as_bytes == sent
    # more messages later: still read
    push.send_multipart([b'late'])
    assert wait_for(lambda: len(got) == 4)
    # closing the socket ends the reader quietly
    pull.close()
    handle.join(timeout=5)
    assert handle.dead
    assert handle.successful()


@pytest.mark.parametrize('transport', TRANSPORTS)
def test_read_forever_stops_when_killed(make_server, helpers, transport):
    server, _ = make_server()
    pull = helpers(_pseud.PULL)
    push = helpers(_pseud.PUSH)
    endpoint = pull.bind(endpoint_for(transport)) or pull.last_endpoint.decode()
    push.connect(endpoint)
    got = []
    handle = server.read_forever(pull, got.append)
    push.send(b'before')
    assert wait_for(lambda: len(got) == 1)
    handle.kill(timeout=5)
    assert handle.dead
    push.send(b'after')
    gevent.sleep(0.2)
    assert len(got) == 1
    # the socket itself is still usable: the message waits there
    assert recv_within(pull, 5) == [b'after']


# ============================================================ send_message

@pytest.mark.parametrize('transport', TRANSPORTS)
def test_send_message_waits_for_a_peer_not_yet_connected(make_server, helpers, transport):
    server, bound = make_server(endpoint=endpoint_for(transport))
    late = unique('late').encode()
    uuid = b'u' * 16
    server.send_message([late, EMPTY_DELIMITER, VERSION, uuid, HEARTBEAT, b'hi'])
    assert server.pending_sends == 1
    gevent.sleep(0.1)
    dealer = helpers(_pseud.DEALER)
    dealer.identity = late
    dealer.connect(bound)
    assert recv_within(dealer, 5) == [EMPTY_DELIMITER, VERSION, uuid, HEARTBEAT, b'hi']
    assert wait_for(lambda: server.pending_sends == 0)


def test_send_message_queued_is_dropped_after_the_timeout(make_server):
    server, _ = make_server(timeout=0.3)
    server.send_message([b'nobody', b'', VERSION, b'u' * 16, HEARTBEAT, b''])
    assert server.pending_sends == 1
    assert wait_for(lambda: server.pending_sends == 0, seconds=3)


@pytest.mark.parametrize('transport', TRANSPORTS)
def test_send_message_other_frame_counts_go_straight_out(make_server, helpers, transport):
    server, bound = make_server(endpoint=endpoint_for(transport))
    dealer = helpers(_pseud.DEALER)
    peer = unique('peer').encode()
    dealer.identity = peer
    dealer.connect(bound)
    # the peer is unknown until it speaks: a raw message to it fails now
    stranger = unique('stranger').encode()
    with pytest.raises(Exception):
        server.send_message([stranger, b'raw'])
    assert server.pending_sends == 0
    dealer.send_multipart([b'', b'hello'])          # a probe: lets the server know us
    gevent.sleep(0.1)
    for frames in ([b'a'], [b'a', b'b'], [b'a', b'b', b'c', b'd'],
                   [b'1', b'2', b'3', b'4', b'5', b'6', b'7']):
        server.send_message([peer] + frames)
        assert recv_within(dealer, 5) == frames
    assert server.pending_sends == 0


def test_send_message_six_frames_are_sent_as_given(make_server, helpers):
    server, bound = make_server()
    dealer = helpers(_pseud.DEALER)
    peer = unique('peer').encode()
    dealer.identity = peer
    dealer.connect(bound)
    dealer.send_multipart([b'', b'hello'])
    gevent.sleep(0.1)
    server.send_message([peer, b'', b'v9', b'x' * 16, WORK, b'body'])
    assert recv_within(dealer, 5) == [b'', b'v9', b'x' * 16, WORK, b'body']


def test_send_message_rejects_frames_that_are_not_bytes_like(make_server):
    server, _ = make_server()
    for frames in ([b'peer', b'', VERSION, b'u' * 16, HEARTBEAT, 1], [None],
                   [b'a', [98]], [b'a', object()]):
        with pytest.raises(TypeError, match='frame'):
            server.send_message(frames)
    with pytest.raises(TypeError):
        server.send_message(42)
    assert server.pending_sends == 0


def test_send_message_sends_str_as_utf8_and_bytes_like_frames_as_bytes(make_server, helpers):
    server, bound = make_server()
    dealer = helpers(_pseud.DEALER)
    peer = unique('peer')
    dealer.identity = peer.encode()
    dealer.connect(bound)
    dealer.send_multipart([b'', b'hello'])
    gevent.sleep(0.1)
    server.send_message([peer, 'h\u00e9', bytearray(b'ba'), memoryview(b'mv')])
    assert recv_within(dealer, 5) == ['h\u00e9'.encode('utf-8'), b'ba', b'mv']
    # six frames in the wire layout take the outbox path: converted as well
    server.send_message([peer, '', VERSION.decode(), bytearray(b'u' * 16), HEARTBEAT, 'hi'])
    assert recv_within(dealer, 5) == [b'', VERSION, b'u' * 16, HEARTBEAT, b'hi']


def test_send_message_to_peer_routing_id_given_as_str_like_upstream_plugins(make_client,
                                                                             helpers):
    """An upstream-style client plugin sends to self.rpc.peer_routing_id,
    which reads back as str when the client was made with a str."""
    router = helpers(_pseud.ROUTER)
    server_id = unique('server')
    router.identity = server_id.encode()
    bound = router.bind('tcp://127.0.0.1:*')
    client = make_client(server_id, bound)
    assert isinstance(client.peer_routing_id, str)
    uuid = b'u' * 16
    client.send_message([client.peer_routing_id, EMPTY_DELIMITER, VERSION, uuid,
                         HEARTBEAT, b''])
    got = recv_within(router, 5)
    if got is not None and got[1:] == [b'']:
        got = recv_within(router, 5)        # the client's probe (ZMQ_PROBE_ROUTER) came first
    assert got is not None and got[1:] == [EMPTY_DELIMITER, VERSION, uuid, HEARTBEAT, b'']


def test_send_message_after_stop_raises_runtime_error(make_server):
    server, _ = make_server()
    server.stop()
    with pytest.raises(RuntimeError):
        server.send_message([b'peer', b'', VERSION, b'u' * 16, HEARTBEAT, b''])
    with pytest.raises(RuntimeError):
        server.send_message([b'peer', b'x'])
    before = pseud.Server(unique('unbound'))
    try:
        with pytest.raises(RuntimeError):
            before.send_message([b'peer', b'x'])
    finally:
        before.stop()


# ================================================================ timers

def test_periodic_callback_repeats_until_killed(make_server):
    server, _ = make_server()
    ticks = []
    handle = server.create_periodic_callback(lambda: ticks.append(time.monotonic()), 0.05)
    gevent.sleep(0.55)
    count = len(ticks)
    assert 5 <= count <= 12, ticks
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert all(0.02 < gap < 0.3 for gap in gaps), gaps
    handle.kill()
    gevent.sleep(0.2)
    assert len(ticks) == count


def test_later_callback_runs_once_unless_killed(make_server):
    server, _ = make_server()
    fired = []
    start = time.monotonic()
    server.create_later_callback(lambda: fired.append(time.monotonic() - start), 0.15)
    killed = server.create_later_callback(lambda: fired.append('killed one ran'), 0.1)
    killed.kill()
    gevent.sleep(0.05)
    assert fired == []
    gevent.sleep(0.5)
    assert len(fired) == 1
    assert 0.12 <= fired[0] < 1.0


# =========================================================== z85 and keys

def test_curve_keypair_and_z85_round_trips():
    public, secret = pseud.curve_keypair()
    assert type(public) is bytes and type(secret) is bytes
    assert len(public) == len(secret) == 40
    assert public != secret
    assert pseud.curve_keypair() != (public, secret)
    for key in (public, secret):
        raw = pseud.z85_decode(key)
        assert len(raw) == 32
        assert pseud.z85_encode(raw) == key
        assert pseud.z85_decode(key.decode('ascii')) == raw
    # the Z85 specification's test vector
    hello = bytes([0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B])
    assert pseud.z85_encode(hello) == b'HelloWorld'
    assert pseud.z85_decode(b'HelloWorld') == hello
    for data in (bytes(range(256)), b'\x00' * 4, b'\xff' * 8):
        assert pseud.z85_decode(pseud.z85_encode(data)) == data
    assert pseud.z85_encode(bytearray(b'\x00' * 4)) == b'00000'
    assert pseud.z85_encode(memoryview(hello)) == b'HelloWorld'


def test_z85_empty_round_trip():
    assert pseud.z85_encode(b'') == b''
    assert pseud.z85_decode(pseud.z85_encode(b'')) == b''


def test_z85_errors():
    for bad_length in (b'a', b'abc', b'abcde'):
        with pytest.raises(ValueError):
            pseud.z85_encode(bad_length)
    for bad in (b'abcd', b'HelloWorl', b'Hello\x00orld', b'~~~~~', b'Hello World'[:10] + b'"',
                'H\xe9llo'):
        with pytest.raises(ValueError):
            pseud.z85_decode(bad)
    with pytest.raises(TypeError):
        pseud.z85_encode('text')
    with pytest.raises(TypeError):
        pseud.z85_encode(1234)
    with pytest.raises(TypeError):
        pseud.z85_decode(12345)


# ================================================== predicates and routing

class User:
    def __init__(self, user_id, permissions=()):
        self.user_id = user_id
        self.permissions = set(permissions)

    def has_permission(self, permission):
        return permission in self.permissions


def permission_backend(plugin, allowed, seen):
    """A zope-free server backend trusting any PLAIN login (ZAP) whose
    predicate arguments give `allowed` logins 'DoSomethingNasty'."""
    class PermissionBackend(TrustedPeerServer):
        name = unique('permissions')
        serves = 'server'

        def get_predicate_arguments(self, user_id):
            seen.append(user_id)
            granted = {'DoSomethingNasty', 'vip'} if user_id in allowed else ()
            return {'user': User(user_id, granted)}

    return plugin(register_auth_backend, PermissionBackend)


def test_restricted_domain_routing_by_permission(make_server, make_client, plugin):
    seen = []
    backend = permission_backend(plugin, {b'boss'}, seen)
    server, bound = make_server(security_plugin=backend.name)
    assert isinstance(server.auth_backend, backend)
    register = server.register_rpc
    register(name='nasty', domain='restricted')(lambda: 'restricted')
    register(name='nasty')(lambda: 'default')
    register(name='only_restricted', domain='restricted')(lambda: 'secret')
    boss = plain_client(make_client, server, bound, 'boss', password='x')
    pleb = plain_client(make_client, server, bound, 'pleb', password='y')
    assert boss.nasty().get() == 'restricted'
    assert pleb.nasty().get() == 'default'
    assert boss.only_restricted().get() == 'secret'
    with pytest.raises(ServiceNotFoundError, match='only_restricted'):
        pleb.only_restricted().get()
    assert set(seen) == {b'boss', b'pleb'}
    # the same decision through the registry
    assert get_rpc_callable('nasty', registry=server.registry,
                            user=User(b'x', {'DoSomethingNasty'}))() == 'restricted'
    assert get_rpc_callable('nasty', registry=server.registry, user=User(b'x'))() == 'default'


def test_secured_backend_refuses_anonymous_inproc_peer(make_server, make_client, plugin):
    """No mechanism on inproc: the peer is anonymous (b''), and a backend
    built on the secured servers refuses it before any predicate runs."""
    seen = []
    backend = permission_backend(plugin, {b'boss'}, seen)
    server, bound = make_server(endpoint=endpoint_for('inproc'), security_plugin=backend.name)
    server.register_rpc(name='nasty')(lambda: 'default')
    boss = plain_client(make_client, server, bound, 'boss', password='x', timeout=SHORT)
    with pytest.raises(gevent.Timeout):
        boss.nasty().get()
    assert seen == []


def test_custom_predicate_domain_end_to_end(make_server, make_client, plugin):
    domain = unique('vip_domain')
    built = []

    @register_predicate
    class VipPredicate:
        name = domain

        def __init__(self, rpc_callable):
            built.append(rpc_callable)
            self.rpc_callable = rpc_callable

        def test(self, user=None, **kw):
            return user is not None and user.has_permission('vip')

    seen = []
    backend = permission_backend(plugin, {b'vip_guest'}, seen)
    server, bound = make_server(security_plugin=backend.name)
    server.register_rpc(name='lounge', domain=domain)(lambda: 'vip lounge')
    server.register_rpc(name='lounge')(lambda: 'hall')
    server.register_rpc(name='vip_only', domain=domain)(lambda: 'champagne')
    vip = plain_client(make_client, server, bound, 'vip_guest', password='x')
    other = plain_client(make_client, server, bound, 'other', password='x')
    assert vip.lounge().get() == 'vip lounge'
    assert other.lounge().get() == 'hall'
    assert vip.vip_only().get() == 'champagne'
    with pytest.raises(ServiceNotFoundError):
        other.vip_only().get()
    assert built and all(c.domain == domain for c in built)
    assert {c.name for c in built} <= {'lounge', 'vip_only'}
    entry = get_rpc_callable('vip_only', registry=server.registry, user=User(b'v', {'vip'}))
    assert entry.domain == domain
    assert entry.test(user=User(b'v', {'vip'})) is True
    assert entry.test(user=User(b'v')) is False


# ====================================================== heartbeat plugins

def recorder_heartbeat(plugin):
    class Recorder(BaseHeartbeatBackend):
        name = unique('hb_recorder')
        serves = ('client', 'server')

        def __init__(self, rpc):
            super().__init__(rpc)
            self.beats = []
            self.configured = 0
            self.stopped = 0

        def configure(self):
            self.configured += 1

        def stop(self):
            self.stopped += 1

        def handle_heartbeat(self, user_id, routing_id):
            self.beats.append((user_id, routing_id))

    return plugin(register_heartbeat_backend, Recorder)


@pytest.mark.parametrize('transport', SECURE_TRANSPORTS)
def test_heartbeat_backend_sees_every_authenticated_message(make_server, make_client,
                                                            plugin, transport):
    recorder = recorder_heartbeat(plugin)
    server, bound = make_server(endpoint=endpoint_for(transport),
                                security_plugin='trusted_peer', heartbeat_plugin=recorder.name)
    server.register_rpc(name='ping')(lambda: 'pong')
    client = plain_client(make_client, server, bound, 'beater', password='x',
                          heartbeat_plugin=recorder.name)
    client_hb, server_hb = client.heartbeat_backend, server.heartbeat_backend
    assert isinstance(client_hb, recorder) and isinstance(server_hb, recorder)
    assert client_hb.configured == 1 and server_hb.configured == 1

    assert client.ping().get() == 'pong'                        # WORK in, OK back
    with pytest.raises(ServiceNotFoundError):
        client.nothing_here().get()                             # WORK in, ERROR back
    client.send_message([server.user_id, EMPTY_DELIMITER, VERSION, b'', HEARTBEAT, b''])
    assert client.ping().get() == 'pong'                        # after the HEARTBEAT
    assert wait_for(lambda: len(server_hb.beats) == 4)
    user = expected_user(transport, b'beater')
    routing_ids = {rid for _, rid in server_hb.beats}
    assert [uid for uid, _ in server_hb.beats] == [user] * 4
    assert len(routing_ids) == 1 and routing_ids != {b''}
    # the client counted each reply (OK, ERROR, OK) from the server's routing id
    assert client_hb.beats == [(b'', server.user_id)] * 3
    # the server calls the client: the client sees a WORK, the server an OK
    client.register_rpc(name='back')(lambda: 'here')
    if transport == 'tcp':
        assert server.send_to('beater').back().get() == 'here'
        assert len(client_hb.beats) == 4
        assert wait_for(lambda: len(server_hb.beats) == 5)
    client.stop()
    client.stop()
    server.stop()
    server.stop()
    for backend in (client_hb, server_hb):
        assert (backend.configured, backend.stopped) == (1, 1)


@pytest.mark.parametrize('identity', [None, b'unknown-peer'])
@pytest.mark.parametrize('transport', TRANSPORTS)
def test_heartbeat_from_unknown_peer_is_ignored_by_noop(make_server, make_client, helpers,
                                                        transport, identity, caplog):
    server, bound = make_server(endpoint=endpoint_for(transport))
    assert server.heartbeat_plugin == 'noop_heartbeat_backend'
    server.register_rpc(name='ping')(lambda: 'pong')
    dealer = helpers(_pseud.DEALER)
    if identity is not None:
        dealer.identity = identity + unique().encode()
    dealer.connect(bound)
    with caplog.at_level(logging.WARNING, logger='pseud'):
        for uuid in (b'', b'h' * 16):
            dealer.send_multipart([EMPTY_DELIMITER, VERSION, uuid, HEARTBEAT, b''])
            dealer.send_multipart([EMPTY_DELIMITER, VERSION, uuid, HEARTBEAT, b'body'])
        assert recv_within(dealer, 0.3) is None                 # no reply to heartbeats
        client = make_client(server.user_id, bound)
        assert client.ping().get() == 'pong'
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize('transport', TRANSPORTS)
def test_testing_heartbeat_client_beats_every_tenth_of_a_second(make_client, helpers,
                                                                 transport):
    router = helpers(_pseud.ROUTER)
    router_id = unique('hb_router').encode()
    router.identity = router_id
    router.bind(endpoint_for(transport))
    bound = router.last_endpoint.decode()
    client = make_client(router_id, bound, heartbeat_plugin='testing_heartbeat_backend')
    # no probe on connect (probe_router is off): the first beat comes first
    first = recv_within(router, 5)
    assert first is not None
    assert first[1:] == [EMPTY_DELIMITER, VERSION, b'', HEARTBEAT, b'']
    client_rid = first[0]
    beats = 0
    window = 1.0
    deadline = time.monotonic() + window
    while time.monotonic() < deadline:
        message = recv_within(router, max(0.0, deadline - time.monotonic()))
        if message is None:
            break
        assert message == [client_rid, EMPTY_DELIMITER, VERSION, b'', HEARTBEAT, b'']
        beats += 1
    assert 6 <= beats <= 13, beats
    client.stop()
    # beats sent before stop() may still be queued at the router: take
    # them (a beating client sends every 0.1 s, so a 0.05 s silence ends
    # this), then nothing may come for three beat intervals
    while recv_within(router, 0.05) is not None:
        pass
    assert recv_within(router, 0.3) is None               # no beat after stop


# ============================================== unauthenticated peers

def gatekeeper_backend(plugin, events):
    class Gatekeeper(TrustedPeerServer):
        """Admits any PLAIN login at the ZAP level, then asks for a HELLO
        before running work."""
        name = unique('gatekeeper')
        serves = 'server'

        def __init__(self, rpc):
            super().__init__(rpc)
            self.allowed = set()

        def is_authenticated(self, user_id):
            return user_id in self.allowed

        def register_routing_id(self, user_id, routing_id):
            events.append(('register', user_id, routing_id))
            super().register_routing_id(user_id, routing_id)

        def handle_authentication(self, user_id, routing_id, uuid):
            events.append(('authentication', user_id, routing_id, uuid))
            body = self.rpc.packer.packb(('UnauthorizedError', 'say hello first', ''))
            self.rpc.send_message([routing_id, EMPTY_DELIMITER, VERSION, uuid, ERROR, body])

        def handle_hello(self, user_id, routing_id, uuid, body):
            events.append(('hello', user_id, routing_id, uuid, body))
            login, password = self.rpc.packer.unpackb(body)
            if password == b'open sesame':
                self.allowed.add(user_id)
                kind = AUTHENTICATED
            else:
                kind = b'\x11'
            self.rpc.send_message([routing_id, EMPTY_DELIMITER, VERSION, uuid, kind, b'x'])

    return plugin(register_auth_backend, Gatekeeper)


@pytest.mark.parametrize('transport', SECURE_TRANSPORTS)
def test_unauthenticated_peer_gets_handle_authentication_not_work(make_server, make_client,
                                                                  plugin, transport):
    events = []
    backend = gatekeeper_backend(plugin, events)
    server, bound = make_server(endpoint=endpoint_for(transport), security_plugin=backend.name)
    ran = []
    server.register_rpc(name='work')(lambda: ran.append(1) or 'done')
    client = plain_client(make_client, server, bound, 'visitor', password='x')
    client.start()
    user = expected_user(transport, b'visitor')

    with pytest.raises(UnauthorizedError, match='say hello first'):
        client.work().get()
    assert ran == []
    kinds = [e[0] for e in events]
    assert kinds.count('authentication') == 1
    auth = [e for e in events if e[0] == 'authentication'][0]
    _, auth_user, routing_id, uuid = auth
    assert auth_user == user
    assert type(routing_id) is bytes and routing_id
    assert type(uuid) is bytes and len(uuid) == 16
    # only authenticated peers are remembered (no routing table growth)
    assert not any(e[0] == 'register' for e in events)

    # a wrong HELLO, then the right one: handle_hello gets each body
    for password in (b'wrong', b'open sesame'):
        body = client.packer.packb((b'visitor', password))
        client.send_message([server.user_id, EMPTY_DELIMITER, VERSION, b'h' * 16, HELLO, body])
    assert wait_for(lambda: [e[0] for e in events].count('hello') == 2)
    hellos = [e for e in events if e[0] == 'hello']
    assert [h[4] for h in hellos] == [client.packer.packb((b'visitor', p))
                                      for p in (b'wrong', b'open sesame')]
    assert all(h[1] == user and h[2] == routing_id and h[3] == b'h' * 16 for h in hellos)
    assert client.work().get() == 'done'
    assert ran == [1]
    assert ('register', user, routing_id) in events
    assert future_pool_empty(client)


def future_pool_empty(rpc):
    return wait_for(lambda: len(rpc.future_pool) == 0, seconds=2)


# ============================================= failures inside plugins

FAILING = ['register_routing_id', 'is_authenticated', 'get_predicate_arguments',
           'handle_authentication', 'handle_hello', 'handle_heartbeat']


@pytest.mark.parametrize('method', FAILING)
@pytest.mark.parametrize('transport', TRANSPORTS)
def test_plugin_exception_is_logged_and_server_keeps_serving(make_server, make_client, plugin,
                                                             caplog, transport, method):
    if method == 'register_routing_id' and transport == 'inproc':
        pytest.skip('no user id on inproc: register_routing_id is not called')
    calls = []

    class Fragile(TrustedPeerServer):
        name = unique('fragile')
        serves = 'server'
        fail = {method} - {'handle_heartbeat'}

        def _maybe_fail(self, name):
            calls.append(name)
            if name in self.fail:
                self.fail.discard(name)
                raise RuntimeError('plugin failure in %s' % name)

        def register_routing_id(self, user_id, routing_id):
            self._maybe_fail('register_routing_id')
            super().register_routing_id(user_id, routing_id)

        def is_authenticated(self, user_id):
            self._maybe_fail('is_authenticated')
            # unauthenticated only while handle_authentication/handle_hello must run
            return not ({'handle_authentication', 'handle_hello'} & self.fail)

        def get_predicate_arguments(self, user_id):
            self._maybe_fail('get_predicate_arguments')
            return {}

        def handle_authentication(self, user_id, routing_id, uuid):
            self._maybe_fail('handle_authentication')

        def handle_hello(self, user_id, routing_id, uuid, body):
            self._maybe_fail('handle_hello')

    class FragileBeat(BaseHeartbeatBackend):
        name = unique('fragile_beat')
        serves = 'server'

        def handle_heartbeat(self, user_id, routing_id):
            calls.append('handle_heartbeat')
            if method == 'handle_heartbeat' and calls.count('handle_heartbeat') == 1:
                raise RuntimeError('plugin failure in handle_heartbeat')

    plugin(register_auth_backend, Fragile)
    plugin(register_heartbeat_backend, FragileBeat)
    server, bound = make_server(endpoint=endpoint_for(transport), security_plugin=Fragile.name,
                                heartbeat_plugin=FragileBeat.name)
    server.register_rpc(name='ping')(lambda: 'pong')
    client = plain_client(make_client, server, bound, 'fragile_user', password='x',
                          timeout=SHORT)
    client.start()
    with caplog.at_level(logging.ERROR, logger='pseud'):
        if method == 'handle_hello':
            body = client.packer.packb((b'fragile_user', b'x'))
            client.send_message([server.user_id, EMPTY_DELIMITER, VERSION, b'h' * 16, HELLO,
                                 body])
            assert wait_for(lambda: 'handle_hello' in calls)
        else:
            first = client.ping()
            # that message is lost (or answered with an error), nothing more
            with pytest.raises((Exception, gevent.Timeout)):
                first.get()
        assert wait_for(lambda: any('plugin failure' in r.getMessage()
                                    or 'plugin failure' in str(r.exc_info)
                                    for r in caplog.records), seconds=2), \
            [r.getMessage() for r in caplog.records]
    assert method in calls
    assert Fragile.fail == set()
    # the next good call works
    assert client.ping().get() == 'pong'
    assert future_pool_empty(client)


# =================================================================== send_to

@pytest.mark.parametrize('transport', SECURE_TRANSPORTS)
def test_send_to_unknown_user_fails_at_once_and_leaves_nothing(make_server, make_client,
                                                                transport):
    # a bound server: EHOSTUNREACH at once, as upstream (docs/guide/calls.rst)
    server, bound = make_server(endpoint=endpoint_for(transport),
                                security_plugin='trusted_peer', timeout=30)
    server.register_rpc(name='ping')(lambda: 'pong')
    client = plain_client(make_client, server, bound, 'known', password='x')
    assert client.ping().get() == 'pong'          # a known peer exists
    for i in range(3):
        with pytest.raises(_pseud.ZMQError) as info:
            server.send_to('nobody_%d' % i).anything()
        assert info.value.errno == errno.EHOSTUNREACH
        assert "b'nobody_%d'" % i in str(info.value)
    assert server.future_pool == {}
    assert server.pending_sends == 0
    client.register_rpc(name='who')(lambda: 'known')
    assert server.send_to('known').who().get() == 'known'


# ====================================================================== stop

def counting_backends(plugin, log):
    class CountingAuth(BaseAuthBackend):
        name = unique('counting_auth')
        serves = ('client', 'server')

        def configure(self):
            log.append(('auth', 'configure', self.rpc))

        def stop(self):
            log.append(('auth', 'stop', self.rpc))

    class CountingBeat(BaseHeartbeatBackend):
        name = unique('counting_beat')
        serves = ('client', 'server')

        def configure(self):
            log.append(('beat', 'configure', self.rpc))

        def stop(self):
            log.append(('beat', 'stop', self.rpc))

    plugin(register_auth_backend, CountingAuth)
    plugin(register_heartbeat_backend, CountingBeat)
    return CountingAuth.name, CountingBeat.name


@pytest.mark.parametrize('transport', TRANSPORTS)
def test_plugins_are_stopped_exactly_once(make_server, make_client, plugin, transport):
    log = []
    auth, beat = counting_backends(plugin, log)
    server, bound = make_server(endpoint=endpoint_for(transport), security_plugin=auth,
                                heartbeat_plugin=beat)
    server.register_rpc(name='ping')(lambda: 'pong')
    client = make_client(server.user_id, bound, security_plugin=auth, heartbeat_plugin=beat)
    assert client.ping().get() == 'pong'
    client.connect(bound)              # a second connect configures nothing again
    for rpc in (server, client):
        rpc.stop()
        rpc.stop()
        rpc.close()
        for kind in ('auth', 'beat'):
            assert [e[1] for e in log if e[0] == kind and e[2] is rpc] == ['configure', 'stop']


def test_a_plugin_failing_to_stop_does_not_stop_the_rest(make_server, plugin, caplog):
    log = []

    class BadStop(BaseAuthBackend):
        name = unique('bad_stop')
        serves = 'server'

        def stop(self):
            log.append('auth stop')
            raise RuntimeError('cannot stop')

    class GoodBeat(BaseHeartbeatBackend):
        name = unique('good_beat')
        serves = 'server'

        def stop(self):
            log.append('beat stop')

    plugin(register_auth_backend, BadStop)
    plugin(register_heartbeat_backend, GoodBeat)
    server, _ = make_server(security_plugin=BadStop.name, heartbeat_plugin=GoodBeat.name)
    sock = server.socket
    with caplog.at_level(logging.ERROR, logger='pseud'):
        server.stop()
        server.stop()
    assert log == ['auth stop', 'beat stop']
    assert sock.closed
    assert any('stop' in r.getMessage() for r in caplog.records)


def test_failed_configure_does_not_leave_an_unsecured_server(make_server, make_client, plugin):
    log = []

    class ConfigureFailsOnce(TrustedPeerServer):
        name = unique('configure_fails_once')
        serves = 'server'

        def configure(self):
            log.append('configure')
            if log.count('configure') == 1:
                raise RuntimeError('key store not ready')
            super().configure()

    plugin(register_auth_backend, ConfigureFailsOnce)
    server = pseud.Server(unique('half'), security_plugin=ConfigureFailsOnce.name)
    try:
        with pytest.raises(RuntimeError):
            server.bind('tcp://127.0.0.1:*')
        try:
            bound = server.bind('tcp://127.0.0.1:*')
        except RuntimeError:
            return      # refusing is fine too
        server.start()
        server.register_rpc(name='secret')(lambda: 'leaked')
        assert server.socket.mechanism == _pseud.PLAIN
        plaintext = make_client(server.user_id, bound, timeout=SHORT)
        with pytest.raises(gevent.Timeout):
            plaintext.secret().get()
    finally:
        server.stop()


def test_plugin_polling_rpc_socket_does_not_stall_the_reader(make_server, make_client):
    """Reading rpc.socket.events takes ZMQ_FD's edge from the RPC's reader;
    its periodic re-check still finds the waiting calls."""
    server, bound = make_server()
    server.register_rpc(name='ping')(lambda: 'pong')
    stop = []

    def poller():
        while not stop:
            server.socket.events
            gevent.sleep(0)

    task = gevent.spawn(poller)
    try:
        client = make_client(server.user_id, bound, timeout=5)
        assert [client.ping().get() for _ in range(3)] == ['pong'] * 3
    finally:
        stop.append(True)
        task.join(timeout=2)


def test_closing_the_plugins_socket_view_leaves_the_rpc_serving(make_server, make_client):
    server, bound = make_server()
    server.register_rpc(name='ping')(lambda: 'pong')
    view = server.socket
    view.close()                      # a plugin closing rpc.socket
    assert view.closed
    assert not server.socket.closed   # a fresh view of the same socket
    assert server.socket.linger == 0
    client = make_client(server.user_id, bound)
    assert client.ping().get() == 'pong'
