"""Security and heartbeat plugins over real sockets (docs/guide/security.rst, docs/guide/heartbeats.rst)."""
import errno
import time

import gevent
import pytest

import pseud
from pseud import _pseud
from pseud.interfaces import IAuthenticationBackend, IClient, IServer, UnauthorizedError
from pseud.utils import auth_backends, register_auth_backend

from naming import unique

pytestmark = pytest.mark.timeout(30)

REFUSED = 0.6     # timeout of calls that a refused handshake must fail


def whoami_server(make_server, endpoint='tcp://127.0.0.1:*', **options):
    server, bound = make_server(endpoint=endpoint, **options)

    @server.register_rpc(with_identity=True)
    def whoami(user_id):
        return user_id

    return server, bound


# ------------------------------------------------------------------ plain

@pytest.mark.parametrize('transport', ['tcp', 'ipc'])
def test_plain_accepts_login_equal_password(make_server, make_client, transport, tmp_path):
    endpoint = ('tcp://127.0.0.1:*' if transport == 'tcp'
                else 'ipc://%s' % (tmp_path / unique('plain')))
    server, bound = whoami_server(make_server, endpoint, security_plugin='plain')
    client = make_client(server.user_id, bound, security_plugin='plain',
                         user_id='alice', password='alice')
    assert client.whoami().get() == b'alice'


def test_secured_server_refuses_anonymous_inproc_peers(make_server, make_client):
    """libzmq skips PLAIN/CURVE and ZAP on inproc, so a peer there is
    anonymous (user id b''): the built-in secured servers fail closed and
    treat it as not authenticated. Documented in the README."""
    endpoint = 'inproc://%s' % unique('plain')
    server, bound = whoami_server(make_server, endpoint, security_plugin='plain')
    client = make_client(server.user_id, bound, security_plugin='plain',
                         user_id='alice', password='alice', timeout=REFUSED)
    with pytest.raises(gevent.Timeout):
        client.whoami().get()


def test_plain_refuses_wrong_password(make_server, make_client):
    server, bound = whoami_server(make_server, security_plugin='plain')
    client = make_client(server.user_id, bound, security_plugin='plain',
                         user_id='alice', password='wrong', timeout=REFUSED)
    with pytest.raises(gevent.Timeout):
        client.whoami().get()
    good = make_client(server.user_id, bound, security_plugin='plain',
                       user_id='bob', password='bob')
    assert good.whoami().get() == b'bob'


def test_plaintext_client_cannot_talk_to_plain_server(make_server, make_client):
    server, bound = whoami_server(make_server, security_plugin='plain')
    client = make_client(server.user_id, bound, timeout=REFUSED)
    with pytest.raises(gevent.Timeout):
        client.whoami().get()


# ----------------------------------------------------------- trusted_peer

def test_documented_server_calls_client_by_user_id(make_server, make_client):
    server, bound = make_server('service', security_plugin='trusted_peer')
    client = make_client('service', bound, security_plugin='plain',
                         user_id='client1', password='')
    client.start()

    @client.register_rpc
    def addition(a, b):
        return a + b

    # a client becomes addressable after its first message
    with pytest.raises(pseud.interfaces.ServiceNotFoundError):
        client.nothing_here().get()
    assert server.send_to('client1').addition(2, 4).get() == 6


def test_send_to_reaches_the_right_client_among_several(make_server, make_client):
    server, bound = make_server(security_plugin='trusted_peer')
    server.register_rpc(name='hello')(lambda: 'hi')
    clients = {}
    for name in ('c1', 'c2', 'c3'):
        client = make_client(server.user_id, bound, security_plugin='plain',
                             user_id=name, password='ignored')
        client.register_rpc(name='me')(lambda name=name: name)
        assert client.hello().get() == 'hi'
        clients[name] = client
    for name in ('c3', 'c1', 'c2'):
        assert server.send_to(name).me().get() == name
        assert server.send_to(name.encode()).me().get() == name


def test_user_id_is_what_zap_authenticated(make_server, make_client):
    """A peer cannot claim another's id: the id comes from the handshake."""
    server, bound = whoami_server(make_server, security_plugin='trusted_peer')
    client = make_client(server.user_id, bound, security_plugin='plain',
                         user_id='mallory', password='x')
    assert client.whoami().get() == b'mallory'


def test_send_to_unknown_user_id_fails_at_once(make_server):
    # a server that only binds has no peer on its way: ROUTER_MANDATORY's
    # EHOSTUNREACH at once, naming the user id, as upstream (calls.rst)
    server, bound = make_server(security_plugin='trusted_peer', timeout=30)
    started = time.monotonic()
    with pytest.raises(_pseud.ZMQError) as info:
        server.send_to('nobody').anything()
    assert time.monotonic() - started < 10      # far below the 30 s timeout
    assert info.value.errno == errno.EHOSTUNREACH
    assert "'nobody'" in str(info.value)
    assert server.future_pool == {}
    assert server.pending_sends == 0


def test_probe_router_lets_the_server_reach_a_client_before_its_first_call(
        make_server, make_client):
    server, bound = make_server(security_plugin='trusted_peer')
    client = make_client(server.user_id, bound, security_plugin='plain',
                         user_id='early', password='', probe_router=True)
    client.register_rpc(name='addition')(lambda a, b: a + b)
    client.start()          # the probe goes out once the client runs
    deadline = time.monotonic() + 10
    while b'early' not in server.auth_backend.routing_ids:
        assert time.monotonic() < deadline, 'the probe never registered the client'
        gevent.sleep(0.01)
    assert server.send_to('early').addition(2, 4).get() == 6


def test_without_probe_a_silent_client_is_not_reachable_yet(make_server, make_client):
    server, bound = make_server(security_plugin='trusted_peer')
    client = make_client(server.user_id, bound, security_plugin='plain',
                         user_id='quiet', password='')
    client.start()
    gevent.sleep(0.3)
    with pytest.raises(_pseud.ZMQError, match="'quiet'"):
        server.send_to('quiet').anything()


# ------------------------------------------------------------------ CURVE

def curve_server(make_server, plugin='trusted_curve', **options):
    public, secret = _pseud.curve_keypair()
    server, bound = whoami_server(make_server, security_plugin=plugin,
                                  public_key=public, secret_key=secret, **options)
    return server, bound, public


def test_trusted_curve_admits_known_keys(make_server, make_client):
    server, bound, server_key = curve_server(make_server)
    public, secret = server.auth_backend.known_identities[b'bob']
    client = make_client(server.user_id, bound, security_plugin='trusted_curve',
                         public_key=public, secret_key=secret, peer_public_key=server_key)
    assert client.whoami().get() == b'bob'


def test_trusted_curve_keys_can_be_added(make_server, make_client):
    server, bound, server_key = curve_server(make_server)
    public, secret = pseud.curve_keypair()
    server.auth_backend.known_identities[b'carol'] = public
    client = make_client(server.user_id, bound, security_plugin='trusted_curve',
                         public_key=public, secret_key=secret, peer_public_key=server_key)
    assert client.whoami().get() == b'carol'


def test_trusted_curve_refuses_unknown_keys(make_server, make_client):
    server, bound, server_key = curve_server(make_server)
    public, secret = pseud.curve_keypair()
    client = make_client(server.user_id, bound, security_plugin='trusted_curve',
                         public_key=public, secret_key=secret, peer_public_key=server_key,
                         timeout=REFUSED)
    with pytest.raises(gevent.Timeout):
        client.whoami().get()


def test_plaintext_client_cannot_talk_to_curve_server(make_server, make_client):
    server, bound, server_key = curve_server(make_server)
    client = make_client(server.user_id, bound, timeout=REFUSED)
    with pytest.raises(gevent.Timeout):
        client.whoami().get()


def test_untrusted_curve_logs_in_with_hello(make_server, make_client):
    server, bound, server_key = curve_server(make_server, 'untrusted_curve')
    server.auth_backend.user_map[b'alice'] = b'secret'
    public, secret = pseud.curve_keypair()
    client = make_client(server.user_id, bound, security_plugin='untrusted_curve',
                         public_key=public, secret_key=secret, peer_public_key=server_key,
                         user_id='alice', password='secret')
    first = client.whoami().get()          # UNAUTHORIZED, HELLO, AUTHENTICATED, replay
    assert first == public      # this connection stays known by its key
    assert client.whoami().get() == first  # same connection: no new challenge
    assert server.auth_backend.trusted_keys[pseud.z85_decode(public)] == b'alice'


def test_untrusted_curve_sends_every_call_made_before_the_login(make_server, make_client):
    server, bound, server_key = curve_server(make_server, 'untrusted_curve')
    server.auth_backend.user_map[b'alice'] = b'secret'
    server.register_rpc(name='echo')(lambda x: x)
    public, secret = pseud.curve_keypair()
    client = make_client(server.user_id, bound, security_plugin='untrusted_curve',
                         public_key=public, secret_key=secret, peer_public_key=server_key,
                         user_id='alice', password='secret', timeout=10)
    # all made before any reply: each gets UNAUTHORIZED, one login is sent,
    # and AUTHENTICATED sends them all again
    futures = [client.echo(i) for i in range(5)]
    assert [f.get() for f in futures] == list(range(5))
    assert client.echo('after').get() == 'after'


def test_untrusted_curve_gives_up_on_every_waiting_call(make_server, make_client):
    server, bound, server_key = curve_server(make_server, 'untrusted_curve')
    server.auth_backend.user_map[b'alice'] = b'secret'
    public, secret = pseud.curve_keypair()
    client = make_client(server.user_id, bound, security_plugin='untrusted_curve',
                         public_key=public, secret_key=secret, peer_public_key=server_key,
                         user_id='alice', password='wrong', timeout=10)
    futures = [client.whoami() for _ in range(3)]
    for future in futures:
        with pytest.raises(UnauthorizedError):
            future.get()


def test_untrusted_curve_gives_up_with_unauthorized_error(make_server, make_client):
    server, bound, server_key = curve_server(make_server, 'untrusted_curve')
    server.auth_backend.user_map[b'alice'] = b'secret'
    public, secret = pseud.curve_keypair()
    client = make_client(server.user_id, bound, security_plugin='untrusted_curve',
                         public_key=public, secret_key=secret, peer_public_key=server_key,
                         user_id='alice', password='wrong', timeout=3)
    with pytest.raises(UnauthorizedError):
        client.whoami().get()


def test_garbage_hello_is_refused_and_server_keeps_serving(make_server, make_client):
    server, bound, server_key = curve_server(make_server, 'untrusted_curve')
    server.auth_backend.user_map[b'alice'] = b'secret'
    attacker_public, attacker_secret = pseud.curve_keypair()
    attacker = make_client(server.user_id, bound, security_plugin='trusted_curve',
                           public_key=attacker_public, secret_key=attacker_secret,
                           peer_public_key=server_key)
    attacker.start()
    for body in (b'\xc1', b'\x93\x01\x02\x03', b'', b'\xdd\xff\xff\xff\xff', b'\x92\x01\x02'):
        attacker.send_message([server.user_id, b'', b'v1', b'x' * 16, b'\x02', body])
    public, secret = pseud.curve_keypair()
    client = make_client(server.user_id, bound, security_plugin='untrusted_curve',
                         public_key=public, secret_key=secret, peer_public_key=server_key,
                         user_id='alice', password='secret')
    assert client.whoami().get() == public
    assert not server.auth_backend.is_authenticated(attacker_public)


def test_servers_with_different_plugins_share_a_process(make_server, make_client):
    plain, plain_ep = whoami_server(make_server, security_plugin='plain')
    trusted, trusted_ep = whoami_server(make_server, security_plugin='trusted_peer')
    curve, curve_ep, curve_key = curve_server(make_server)
    bob_public, bob_secret = curve.auth_backend.known_identities[b'bob']
    a = make_client(plain.user_id, plain_ep, security_plugin='plain',
                    user_id='same', password='same')
    b = make_client(trusted.user_id, trusted_ep, security_plugin='plain',
                    user_id='any', password='thing')
    c = make_client(curve.user_id, curve_ep, security_plugin='trusted_curve',
                    public_key=bob_public, secret_key=bob_secret, peer_public_key=curve_key)
    futures = [a.whoami(), b.whoami(), c.whoami()]
    assert [f.get() for f in futures] == [b'same', b'any', b'bob']


# ------------------------------------------------------ plugins, written by users

def test_documented_zope_style_plugin_loads_by_name_and_is_called(make_server, make_client,
                                                                  request):
    zope_interface = pytest.importorskip('zope.interface')
    zope_component = pytest.importorskip('zope.component')
    calls = []
    plugin_name = unique('my_auth_backend')

    @register_auth_backend
    @zope_interface.implementer(IAuthenticationBackend)
    @zope_component.adapter(IClient)
    class MyAuthBackend:
        name = plugin_name

        def __init__(self, rpc):
            self.rpc = rpc

        def configure(self):
            calls.append('configure')

        def stop(self):
            calls.append('stop')

        def handle_hello(self, *args):
            pass

        def handle_authenticated(self, message):
            pass

        def handle_authentication(self, *args):
            pass

        def is_authenticated(self, user_id):
            return True

        def save_last_work(self, message):
            calls.append('save_last_work')

        def get_predicate_arguments(self, user_id):
            return {}

        def get_routing_id(self, user_id):
            calls.append('get_routing_id')
            return user_id

        def register_routing_id(self, user_id, routing_id):
            pass

    name = plugin_name
    request.addfinalizer(lambda: auth_backends.unregister(name))
    server, bound = make_server()
    server.register_rpc(name='ping')(lambda: 'pong')
    client = make_client(server.user_id, bound, security_plugin=name)
    assert isinstance(client.auth_backend, MyAuthBackend)
    assert client.ping().get() == 'pong'
    assert calls[:3] == ['configure', 'get_routing_id', 'save_last_work']
    # registered for clients only (adapter(IClient)): a server refuses the name
    with pytest.raises(ValueError, match=name):
        pseud.Server('x', security_plugin=name)
    client.stop()
    assert calls[-1] == 'stop'


def test_zope_free_plugin_says_its_side_with_serves(request):
    plugin_name = unique('serves')

    @register_auth_backend
    class ServerOnly(pseud.auth.BaseAuthBackend):
        name = plugin_name
        serves = 'server'

    name = plugin_name

    request.addfinalizer(lambda: auth_backends.unregister(name))
    assert isinstance(pseud.Server('x', security_plugin=name).auth_backend, ServerOnly)
    with pytest.raises(ValueError, match='known: '):
        pseud.Client('x', security_plugin=name)


def test_unknown_plugin_name_lists_known_ones():
    with pytest.raises(ValueError) as info:
        pseud.Server('x', security_plugin='nope')
    for known in ('noop_auth_backend', 'plain', 'trusted_peer', 'trusted_curve',
                  'untrusted_curve'):
        assert known in str(info.value)


# -------------------------------------------------------------- heartbeats

def test_testing_heartbeat_backend(make_server, make_client, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)   # ipc://testing_heartbeating_backend is a file here
    server, bound = make_server(security_plugin='trusted_peer',
                                heartbeat_plugin='testing_heartbeat_backend')
    sub = server.context.socket(_pseud.SUB)
    sub.linger = 0
    sub.subscribe = b''
    sub.connect('ipc://testing_heartbeating_backend')
    request_done = []
    try:
        client = make_client(server.user_id, bound, security_plugin='plain',
                             user_id='beating', password='x',
                             heartbeat_plugin='testing_heartbeat_backend')
        client.start()
        seen = []
        with gevent.Timeout(5):
            while b'beating' not in seen:
                seen.append(sub.recv())
        client.stop()
        with gevent.Timeout(5):
            while True:
                message = sub.recv()
                if message.startswith(b'Gone'):
                    break
        assert message == b"Gone b'beating'"
        request_done.append(True)
    finally:
        sub.close()
    assert request_done


def test_documented_zope_style_heartbeat_plugin_loads_by_name(make_server, make_client,
                                                              request):
    """The heartbeating chapter's snippet: a zope-adapted class named
    'my_heartbeat_backend' (here made unique) is found by name and called."""
    zope_interface = pytest.importorskip('zope.interface')
    zope_component = pytest.importorskip('zope.component')
    from pseud.interfaces import IHeartbeatBackend
    from pseud.utils import heartbeat_backends, register_heartbeat_backend
    beats = []
    plugin_name = unique('my_heartbeat_backend')

    @register_heartbeat_backend
    @zope_interface.implementer(IHeartbeatBackend)
    @zope_component.adapter(IServer)
    class MyHeartbeatBackend:
        name = plugin_name

        def __init__(self, rpc):
            self.rpc = rpc

        def handle_heartbeat(self, user_id, routing_id):
            beats.append(user_id)

        def handle_timeout(self, user_id, routing_id):
            pass

        def configure(self):
            pass

        def stop(self):
            pass

    request.addfinalizer(lambda: heartbeat_backends.unregister(plugin_name))
    server, bound = make_server(security_plugin='trusted_peer', heartbeat_plugin=plugin_name)
    server.register_rpc(name='ping')(lambda: 'pong')
    client = make_client(server.user_id, bound, security_plugin='plain',
                         user_id='beater', password='x')
    assert client.ping().get() == 'pong'
    assert beats == [b'beater']


def test_sync_client_with_plain(make_server):
    import threading
    server, bound = whoami_server(make_server, security_plugin='plain')
    box = {}

    def call(password):
        client = pseud.SyncClient(timeout=REFUSED, security_plugin='plain',
                                  user_id='sync', password=password)
        client.connect(bound)
        try:
            return client.whoami()
        except Exception as exc:
            return exc
        finally:
            client.close()

    def run():
        box['good'] = call('sync')
        box['bad'] = call('wrong')

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    with gevent.Timeout(10):
        while thread.is_alive():
            gevent.sleep(0.01)
    assert box['good'] == b'sync'
    assert isinstance(box['bad'], pseud.interfaces.TimeoutError)


def test_a_zap_domain_serves_one_server(make_server, make_client):
    """Two servers cannot share a ZAP domain: one's stop() would take the
    other's admission rule away (a CURVE server then admits any key)."""
    first, first_ep, first_key = curve_server(make_server)

    class SameDomain(pseud.auth.TrustedCurveServer):
        name = unique('same_domain')

        def __init__(self, rpc):
            super().__init__(rpc)
            self.zap_domain = first.auth_backend.zap_domain

    register_auth_backend(SameDomain)
    try:
        public, secret = pseud.curve_keypair()
        intruder = pseud.Server(unique('intruder'), security_plugin=SameDomain.name,
                                public_key=public, secret_key=secret)
        with pytest.raises(ValueError, match='already used'):
            intruder.bind('tcp://127.0.0.1:*')
        intruder.stop()     # must not unregister the first server's domain
    finally:
        auth_backends.unregister(SameDomain.name)
    stranger_public, stranger_secret = pseud.curve_keypair()
    stranger = make_client(first.user_id, first_ep, security_plugin='trusted_curve',
                           public_key=stranger_public, secret_key=stranger_secret,
                           peer_public_key=first_key, timeout=REFUSED)
    with pytest.raises(gevent.Timeout):
        stranger.whoami().get()
