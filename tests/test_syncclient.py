"""SyncClient: blocking calls over a REQ socket, for code without gevent.

The server runs on the gevent hub of the test process; the SyncClient runs
in a real thread (it blocks the thread, as it should) or in a child process
that cannot import gevent at all."""
import os
import subprocess
import sys
import textwrap
import threading

import gevent
import pytest

import pseud
from pseud.interfaces import ServiceNotFoundError, TimeoutError

from naming import unique

pytestmark = pytest.mark.timeout(30)


def in_thread(func, *args):
    """Run func in a real thread while the hub keeps serving; return its
    result or raise its exception."""
    box = {}

    def target():
        try:
            box['value'] = func(*args)
        except BaseException as exc:  # handed back to the test
            box['error'] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    while thread.is_alive():
        gevent.sleep(0.005)
    if 'error' in box:
        raise box['error']
    return box['value']


@pytest.fixture
def served(make_server):
    server, endpoint = make_server()
    server.register_rpc(str.upper)

    @server.register_rpc
    def add(a, b=0):
        return a + b

    @server.register_rpc
    def fail():
        raise KeyError('missing')

    @server.register_rpc
    def nap(seconds):
        gevent.sleep(seconds)
        return seconds

    return server, endpoint


@pytest.fixture
def sync(request):
    made = []

    def factory(endpoint, **options):
        client = pseud.SyncClient(**options)
        made.append(client)
        client.connect(endpoint)
        return client

    yield factory
    for client in made:
        client.close()


def test_call_returns_the_value_itself(served, sync):
    server, endpoint = served
    client = sync(endpoint)
    assert in_thread(client.upper, 'abc') == 'ABC'
    assert in_thread(lambda: client.add(2, b=3)) == 5
    assert in_thread(client.send_work, 'add', 1, 1) == 2


def test_remote_errors_are_raised(served, sync):
    server, endpoint = served
    client = sync(endpoint)
    with pytest.raises(KeyError, match='missing'):
        in_thread(client.fail)
    with pytest.raises(ServiceNotFoundError):
        in_thread(client.unknown_name)
    assert in_thread(client.upper, 'still works') == 'STILL WORKS'


def test_timeout_raises_and_next_call_still_works(served, sync):
    server, endpoint = served
    client = sync(endpoint, timeout=0.2)
    # the message names the call and the timeout (a %g in PyErr_Format
    # made this a SystemError on 3.12+)
    with pytest.raises(TimeoutError, match=r"no reply to 'nap' within 0\.2 s"):
        in_thread(client.nap, 0.5)
    # upstream's REQ socket stayed stuck here; ours is replaced
    assert in_thread(client.nap, 0) == 0
    assert in_thread(client.upper, 'x') == 'X'


@pytest.mark.parametrize('transport', ['tcp', 'inproc'])
def test_bind_lets_a_server_connect_to_the_client(make_server, transport):
    # upstream's SyncClient.bind(): the server connects to the client
    server, _ = make_server()
    server.register_rpc(name='shout')(str.upper)

    @server.register_rpc
    def nap(seconds):
        gevent.sleep(seconds)
        return seconds

    client = pseud.SyncClient(timeout=0.5)
    try:
        where = 'tcp://127.0.0.1:*' if transport == 'tcp' else 'inproc://%s' % unique('sb')
        bound = client.bind(where)
        assert bound.startswith(transport + '://') and not bound.endswith('*')
        server.connect(bound)
        assert in_thread(client.shout, 'abc') == 'ABC'
        if transport == 'inproc':
            return      # an inproc peer does not reconnect to a new socket
        # after a timeout the socket is replaced, bound to the same endpoint
        # (the server reconnects to it as to any tcp endpoint that came back)
        with pytest.raises(TimeoutError):
            in_thread(client.nap, 1)
        assert in_thread(client.shout, 'again') == 'AGAIN'
    finally:
        client.close()


def test_closed_client_refuses_calls(served):
    server, endpoint = served
    client = pseud.SyncClient()
    client.connect(endpoint)
    client.close()
    client.close()
    with pytest.raises(RuntimeError, match='closed'):
        client.upper('x')


def test_attribute_before_connect_raises():
    client = pseud.SyncClient()
    try:
        with pytest.raises(RuntimeError, match='connect first'):
            client.upper
    finally:
        client.close()


def test_options_are_checked_and_readable():
    client = pseud.SyncClient(b'srv', timeout=1.5, user_id='me', password='pw',
                              security_plugin='plain')
    try:
        assert client.peer_routing_id == b'srv'
        assert client.timeout == 1.5
        assert client.user_id == 'me'
        assert client.password == 'pw'
        assert client.security_plugin == 'plain'
    finally:
        client.close()
    with pytest.raises(TypeError, match='user_id must be str or bytes'):
        pseud.SyncClient(user_id=5)
    with pytest.raises(TypeError, match='peer_routing_id must be str or bytes'):
        pseud.SyncClient(1.5)
    with pytest.raises(ValueError, match='noop_auth_backend'):
        pseud.SyncClient(security_plugin='nope')
    with pytest.raises(ValueError):
        pseud.SyncClient(timeout=0)
    with pytest.raises(TypeError):
        pseud.SyncClient(timeout='5')


def test_options_read_back_as_given():
    # as upstream's (and pseud.Client's): str stays str, bytes stay bytes;
    # the conversion to bytes for libzmq is internal
    for given in ('echo', b'echo'):
        client = pseud.SyncClient(given, user_id=given, password=given + given)
        try:
            assert client.peer_routing_id == given
            assert type(client.peer_routing_id) is type(given)
            assert client.user_id == given and type(client.user_id) is type(given)
            assert client.password == given + given
        finally:
            client.close()
    client = pseud.SyncClient()
    try:
        assert client.peer_routing_id is None
        assert client.user_id is None and client.password is None
    finally:
        client.close()


def test_plain_login_with_str_or_bytes_options(make_server, sync):
    # the options as given still reach libzmq as bytes: the server's PLAIN
    # check (password == login) sees the login, and the call's identity is it
    server, endpoint = make_server(security_plugin='plain')
    server.register_rpc(name='whoami', with_identity=True)(lambda user_id: user_id)
    for login in ('alice', b'bob'):
        client = sync(endpoint, user_id=login, password=login, security_plugin='plain')
        assert client.user_id == login
        want = login if isinstance(login, bytes) else login.encode()
        assert in_thread(client.whoami) == want


def test_works_without_gevent(served):
    """A child process in which gevent cannot even be imported."""
    server, endpoint = served
    script = textwrap.dedent('''
        import sys
        sys.modules['gevent'] = None
        sys.modules['greenlet'] = None
        import pseud
        client = pseud.SyncClient(timeout=5)
        client.connect(sys.argv[1])
        print(client.upper('no gevent'))
        client.close()
    ''')
    child = subprocess.Popen([sys.executable, '-c', script, endpoint],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=dict(os.environ),
                             cwd=os.path.dirname(os.path.abspath(__file__)))
    for _ in range(2000):
        if child.poll() is not None:
            break
        gevent.sleep(0.01)
    else:
        child.kill()
    out, err = child.communicate(timeout=5)
    assert child.returncode == 0, err
    assert out.strip() == 'NO GEVENT'


def test_malformed_reply_fails_the_call_only(tmp_path):
    """A raw server answering garbage: the call raises, the next one works."""
    zmq = pytest.importorskip('zmq.green')
    ctx = zmq.Context()
    raw = ctx.socket(zmq.ROUTER)
    raw.linger = 0
    port = raw.bind_to_random_port('tcp://127.0.0.1')
    client = pseud.SyncClient(timeout=5)
    client.connect('tcp://127.0.0.1:%d' % port)
    try:
        replies = iter([
            lambda f: [f[0], b'', b'v1', f[3], b'\x01', b'\xc1'],       # garbage body
            lambda f: [f[0], b'', b'v1', b'x' * 16, b'\x01', b'\xc0'],  # another call's id
            lambda f: [f[0], b'', b'v1', f[3], b'\x01', b'\xa2ok'],     # fine: 'ok'
        ])

        def serve():
            for make in replies:
                frames = raw.recv_multipart()
                assert len(frames) == 6 and frames[2] == b'v1' and frames[4] == b'\x03'
                raw.send_multipart(make(frames))

        server = gevent.spawn(serve)
        with pytest.raises(ValueError):
            in_thread(client.anything)
        with pytest.raises(Exception, match='another call'):
            in_thread(client.anything)
        assert in_thread(client.anything) == 'ok'
        server.join(timeout=5)
        assert server.successful()
    finally:
        client.close()
        raw.close()


def test_one_call_at_a_time_across_threads(served, sync):
    """The GIL is released while a call waits: a second thread using the
    same client is refused instead of racing on the socket."""
    server, endpoint = served
    client = sync(endpoint)
    results = {}

    def slow():
        results['slow'] = client.nap(0.3)

    def second():
        try:
            client.upper('x')
        except RuntimeError as exc:
            results['second'] = str(exc)

    first = threading.Thread(target=slow, daemon=True)
    first.start()
    gevent.sleep(0.1)           # the first thread is waiting for its reply
    in_thread(second)
    while first.is_alive():
        gevent.sleep(0.01)
    assert results['slow'] == 0.3
    assert 'one call at a time' in results['second']


def test_close_from_another_thread_during_a_call(served, sync):
    server, endpoint = served
    client = sync(endpoint)
    results = {}

    def call():
        results['value'] = client.nap(0.3)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    gevent.sleep(0.1)
    client.close()              # deferred until the call is over
    while thread.is_alive():
        gevent.sleep(0.01)
    assert results['value'] == 0.3
    with pytest.raises(RuntimeError, match='closed'):
        client.upper('x')


def test_non_finite_timeout_is_refused():
    with pytest.raises(ValueError):
        pseud.SyncClient(timeout=float('inf'))
