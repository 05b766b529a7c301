"""End to end: Server and Client over real sockets (docs/guide/calls.rst,
docs/guide/registries.rst, docs/guide/errors.rst), including every example
of docs/quickstart.rst."""
import datetime
import logging
import os
import subprocess
import sys
import time
import textwrap

import gevent
import gevent.event
import pytest

import pseud
from pseud.interfaces import ServiceNotFoundError
from pseud.utils import create_local_registry, register_rpc, registry as global_registry

from naming import unique

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def global_name(request):
    """A unique global name, unregistered at teardown."""
    name = unique('g')
    request.addfinalizer(lambda: global_registry.unregister(name))
    return name


def test_quickstart_first_example(make_server, make_client, request):
    server, endpoint = make_server('remote')
    # register locally for this server only
    server.register_rpc(str.lower)
    # register globally for all rpc instances (restored at teardown)
    register_rpc(str.upper)
    request.addfinalizer(lambda: global_registry.unregister('upper'))

    client = make_client('remote', endpoint)
    future1 = client.lower('ABC')
    future2 = client.upper('def')
    assert future1.get() == 'abc'
    assert future2.get() == 'DEF'


def test_local_registration_is_not_seen_by_other_servers(make_server, make_client):
    first, ep1 = make_server()
    second, ep2 = make_server()
    name = unique('only_first')
    first.register_rpc(name=name)(lambda: 'first')
    assert make_client(first.user_id, ep1).send_work(first.user_id, name).get() == 'first'
    with pytest.raises(ServiceNotFoundError):
        make_client(second.user_id, ep2).send_work(second.user_id, name).get()


def test_registry_given_to_server(make_server, make_client):
    registry = create_local_registry('worker')

    @register_rpc(registry=registry)
    def call_me():
        return 'Done'

    server, endpoint = make_server(unique('worker'), registry=registry)
    client = make_client(server.user_id, endpoint)
    assert client.call_me().get() == 'Done'


def test_name_it_dotted(make_server, make_client):
    server, endpoint = make_server()

    @server.register_rpc('this.is.a.name')
    def call_me():
        return 'Done'

    client = make_client(server.user_id, endpoint)
    # `client.this.is.a.name()` of the document; 'is' is a keyword in Python
    assert getattr(client.this, 'is').a.name().get() == 'Done'


def test_proxy_name_compares_as_dotted_name(pair):
    server, client = pair
    proxy = client.a.b
    assert proxy.name == 'a.b'
    assert str(proxy.name) == 'a.b'
    assert client.hello.name == 'hello'
    assert client.a.b.c != 'a.b'


def test_proxy_calling_name_calls_dotted_name(pair):
    server, client = pair
    server.register_rpc(name='this.a.name')(lambda: 'called this.a.name')
    assert client.this.a.name().get() == 'called this.a.name'


def test_attribute_before_connect_raises_runtime_error():
    client = pseud.Client('nobody')
    try:
        with pytest.raises(RuntimeError, match='connect or bind'):
            client.hello
    finally:
        client.stop()


def test_args_kwargs_and_types_round_trip(pair):
    server, client = pair

    @server.register_rpc
    def echo(*args, **kwargs):
        return args, kwargs

    when = datetime.datetime(2003, 9, 27, 9, 40, 1, 521290, tzinfo=datetime.timezone.utc)
    args, kwargs = client.echo(1, b'raw', 'text', None, 2.5, [1, 2], {'k': (3,)},
                               when=when, day=when.date()).get()
    assert args == (1, b'raw', 'text', None, 2.5, (1, 2), {'k': (3,)})
    assert kwargs == {'when': when, 'day': when.date()}


def test_remote_builtin_exception_is_reraised(pair):
    server, client = pair

    @server.register_rpc
    def fail():
        raise ValueError('bad value here')

    with pytest.raises(ValueError) as info:
        client.fail().get()
    text = str(info.value)
    assert 'bad value here' in text
    assert '-- Beginning of remote traceback --' in text
    assert 'raise ValueError' in text
    assert server.started   # still serving
    server.register_rpc(name='ok')(lambda: 'still here')
    assert client.ok().get() == 'still here'


def test_remote_custom_exception_becomes_exception_with_class_name(pair):
    server, client = pair

    class Custom(Exception):
        pass

    @server.register_rpc
    def custom():
        raise Custom('mine')

    with pytest.raises(Exception) as info:
        client.custom().get()
    assert type(info.value) is Exception
    assert str(info.value).startswith('Custom\n')
    assert str(info.value).endswith('mine')


def test_unknown_name_raises_service_not_found(pair):
    server, client = pair
    with pytest.raises(ServiceNotFoundError) as info:
        client.does_not_exist().get()
    assert 'does_not_exist' in str(info.value)
    # the remote traceback, as upstream's, names where the lookup ran
    text = str(info.value)
    assert 'Traceback (most recent call last):' in text
    assert os.path.dirname(pseud.__file__) in text
    assert 'ServiceNotFoundError: does_not_exist' in text


def test_timeout_raises_gevent_timeout_and_empties_pool(make_client):
    client = make_client('nobody', 'inproc://%s' % unique('nobody'), timeout=0.2)
    future = client.anything()
    assert len(client.future_pool) == 1
    with pytest.raises(gevent.Timeout):
        future.get()
    assert client.future_pool == {}


def test_timeout_says_what_timed_out_and_is_both_timeouts(make_client):
    # docs/guide/calls.rst, "Timeouts": gevent.Timeout as upstream's, and
    # pseud.interfaces.TimeoutError as SyncClient's
    client = make_client('remote', 'inproc://%s' % unique('nobody'), timeout=0.25)
    future = client.a.b(1)
    with pytest.raises(gevent.Timeout) as info:
        future.get()
    assert str(info.value) == "no reply to 'a.b' from b'remote' within 0.25 s"
    assert isinstance(info.value, pseud.interfaces.TimeoutError)
    with pytest.raises(pseud.interfaces.TimeoutError):
        client.other().get()
    # an un-started Timeout: raising it leaves no timer behind to fire later
    assert not info.value.pending
    gevent.sleep(0.3)


def test_send_to_timeout_names_the_user_id(make_server, make_client):
    server, endpoint = make_server(timeout=0.3)
    # a server that connected somewhere waits for peers: the call times out
    server.connect('inproc://%s' % unique('away'))
    with pytest.raises(pseud.interfaces.TimeoutError) as info:
        server.send_to('someone').x.y().get()
    assert str(info.value) == "no reply to 'x.y' from b'someone' within 0.3 s"


def test_timeouts_fire_in_send_order_and_late_reply_is_logged(make_server, make_client,
                                                              caplog):
    server, endpoint = make_server()

    @server.register_rpc
    def slow(seconds):
        gevent.sleep(seconds)
        return seconds

    client = make_client(server.user_id, endpoint, timeout=0.3)
    late = client.slow(0.6)
    quick = client.slow(0)
    assert quick.get() == 0
    with pytest.raises(gevent.Timeout):
        late.get()
    with caplog.at_level(logging.DEBUG, logger='pseud'):
        gevent.sleep(0.5)          # the late reply arrives and is logged
    late_lines = [r.getMessage() for r in caplog.records
                  if r.name == 'pseud' and 'no longer waiting' in r.getMessage()]
    assert len(late_lines) == 1, late_lines
    assert late_lines[0].startswith('pseud: OK from %r' % server.user_id)
    assert client.future_pool == {}
    assert client.slow(0).get() == 0


def test_call_ended_by_its_caller_leaves_the_pool_and_its_reply_is_logged(
        make_server, make_client, caplog):
    # upstream's test_timeout_and_error_received_later, over tcp
    server, endpoint = make_server(start=False)
    client = make_client(server.user_id, endpoint)
    future = client.string.doesnotexist('QWERTY')
    # the call must have left (a call ended while still in the outbox is
    # never sent): the server's socket holds it until the server starts
    deadline = time.monotonic() + 10
    while client.pending_sends:
        assert time.monotonic() < deadline, 'the call never left'
        gevent.sleep(0.01)
    future.set_exception(gevent.Timeout)
    assert client.future_pool == {}
    with caplog.at_level(logging.DEBUG, logger='pseud'):
        server.start()
        deadline = time.monotonic() + 10
        while not [r for r in caplog.records if 'no longer waiting' in r.getMessage()]:
            assert time.monotonic() < deadline, 'the late reply was not logged'
            gevent.sleep(0.02)
    line, = [r.getMessage() for r in caplog.records if 'no longer waiting' in r.getMessage()]
    assert line.startswith('pseud: ERROR from %r' % server.user_id), line
    assert line.endswith('ServiceNotFoundError: string.doesnotexist'), line
    with pytest.raises(gevent.Timeout):
        future.get()


def test_each_call_runs_in_its_own_greenlet(pair):
    server, client = pair
    order = []

    @server.register_rpc
    def work(name, seconds):
        gevent.sleep(seconds)
        order.append(name)
        return name

    slow = client.work('slow', 0.3)
    fast = client.work('fast', 0)
    assert fast.get() == 'fast'
    assert not slow.ready()
    assert slow.get() == 'slow'
    assert order == ['fast', 'slow']


def test_call_right_after_connect_is_delivered_when_peer_binds(make_server, make_client):
    endpoint = 'inproc://%s' % unique('late')
    user_id = unique('late_srv')
    client = make_client(user_id, endpoint)
    future = client.upper_late('x')
    gevent.sleep(0.2)          # nobody there yet
    assert not future.ready()
    server, _ = make_server(user_id, endpoint)
    server.register_rpc(name='upper_late')(str.upper)
    assert future.get() == 'X'


def test_call_right_after_connect_over_tcp(make_server, make_client):
    server, endpoint = make_server()
    server.register_rpc(name='now')(lambda: 'now')
    client = make_client(server.user_id, endpoint)
    assert client.now().get() == 'now'


def test_bind_and_connect_fail_with_zmqerror_like_rpc_socket(make_server, make_client):
    import errno
    from pseud import _pseud
    server, _ = make_server()
    client = make_client(server.user_id)
    with pytest.raises(_pseud.ZMQError) as info:
        server.bind('nonsense://where')
    assert info.value.errno == errno.EPROTONOSUPPORT
    assert isinstance(info.value, OSError)    # what upstream-style code catches
    assert 'nonsense://where' in str(info.value)
    with pytest.raises(_pseud.ZMQError) as info:
        client.connect('tcp://')
    assert info.value.errno == errno.EINVAL
    # the plugin view of the same socket fails the same way
    with pytest.raises(_pseud.ZMQError) as direct:
        client.socket.connect('tcp://')
    assert direct.value.errno == info.value.errno
    with pytest.raises(_pseud.ZMQError):
        client.disconnect('tcp://127.0.0.1:1')


def test_endpoint_with_a_nul_character_is_refused_everywhere(make_server, make_client):
    name = unique('nul')
    server, _ = make_server()
    with pytest.raises(ValueError, match='NUL'):
        server.bind('inproc://%s\x00tail' % name)
    client = make_client(server.user_id)
    with pytest.raises(ValueError, match='NUL'):
        client.connect('inproc://%s\x00tail' % name)
    sync = pseud.SyncClient()
    try:
        with pytest.raises(ValueError, match='NUL'):
            sync.connect(b'inproc://%s\x00tail' % name.encode())
    finally:
        sync.close()
    # nothing was bound under the truncated name
    probe = pseud.Server(unique('probe'))
    try:
        assert probe.bind('inproc://%s' % name) == 'inproc://%s' % name
    finally:
        probe.stop()


def test_many_calls_in_flight(pair):
    server, client = pair
    server.register_rpc(name='double')(lambda x: 2 * x)
    futures = [client.double(i) for i in range(500)]
    done = gevent.wait(futures, timeout=10)
    assert len(done) == 500
    assert [f.get() for f in futures] == [2 * i for i in range(500)]
    assert client.future_pool == {}


def test_many_greenlets_share_one_client(pair):
    server, client = pair
    server.register_rpc(name='ident')(lambda x: x)
    jobs = [gevent.spawn(lambda i=i: [client.ident((i, j)).get() for j in range(20)])
            for i in range(50)]
    gevent.joinall(jobs, timeout=10, raise_error=True)
    for i, job in enumerate(jobs):
        assert job.value == [(i, j) for j in range(20)]


def test_iwait_on_futures(pair):
    server, client = pair

    @server.register_rpc
    def nap(seconds):
        gevent.sleep(seconds)
        return seconds

    futures = [client.nap(s) for s in (0.2, 0.0, 0.1)]
    finished = [f.get() for f in gevent.iwait(futures)]
    assert finished == [0.0, 0.1, 0.2]


def test_send_to_reaches_named_peer(make_server):
    # a server is addressable by its user id: one server calls another
    callee, endpoint = make_server()
    caller, _ = make_server()
    callee.register_rpc(name='addition')(lambda a, b: a + b)
    caller.connect(endpoint)
    assert caller.send_to(callee.user_id).addition(2, 4).get() == 6
    assert caller.send_to(callee.user_id.decode()).addition(1, 1).get() == 2


def test_with_identity_receives_caller_id(pair):
    server, client = pair

    @server.register_rpc(with_identity=True)
    def whoami(user_id, suffix):
        return user_id + suffix

    # no security plugin: every peer is anonymous, user id b''
    assert client.whoami(b'!').get() == b'!'


def test_stop_fails_outstanding_futures_and_is_idempotent(make_server, make_client):
    server, endpoint = make_server()

    @server.register_rpc
    def hang():
        gevent.sleep(5)

    client = make_client(server.user_id, endpoint, timeout=5)
    future = client.hang()
    gevent.sleep(0.05)
    client.stop()
    client.stop()
    with pytest.raises(ConnectionAbortedError):
        future.get(timeout=1)
    assert client.future_pool == {}
    with pytest.raises(RuntimeError):
        client.hang


def test_close_is_stop(pair):
    server, client = pair
    client.close()
    assert not client.initialized


def test_start_twice_is_harmless(pair):
    server, client = pair
    server.start()
    server.start()
    server.register_rpc(name='fine')(lambda: 1)
    assert client.fine().get() == 1


def test_options_are_readable(make_server, make_client):
    server, endpoint = make_server('readable', timeout=2.5)
    assert server.user_id == 'readable'       # as given: str stays str
    assert server.timeout == 2.5
    assert server.security_plugin == 'noop_auth_backend'
    assert server.heartbeat_plugin == 'noop_heartbeat_backend'
    client = make_client('readable', endpoint, io_loop=object(), context=None)
    assert client.peer_routing_id == 'readable'
    assert server.proxy_to is None


@pytest.mark.parametrize('name', ['echo', b'echo', 'écho'])
def test_identities_read_back_as_given_and_work(make_server, make_client, name):
    # upstream code compares these options with what it passed; the wire
    # still carries UTF-8 bytes
    assert pseud.Client(name).peer_routing_id == name
    assert pseud.Server(name).user_id == name
    server, endpoint = make_server(name)
    assert server.user_id == name
    assert server.socket.identity == (name if isinstance(name, bytes) else name.encode())
    server.register_rpc(name='hello')(lambda: 'hi')
    client = make_client(name, endpoint)
    assert client.peer_routing_id == name
    assert client.hello().get() == 'hi'


def test_routing_id_option_is_refused():
    with pytest.raises(TypeError, match='routing_id'):
        pseud.Client('x', routing_id=b'y')


def test_unknown_plugin_names_are_refused():
    with pytest.raises(ValueError, match='noop_auth_backend'):
        pseud.Client('x', security_plugin='nope')
    with pytest.raises(ValueError, match='noop_heartbeat_backend'):
        pseud.Client('x', heartbeat_plugin='nope')


def test_bad_timeout_is_refused():
    with pytest.raises(ValueError):
        pseud.Client('x', timeout=0)
    with pytest.raises(TypeError):
        pseud.Client('x', timeout='5')


def test_proxy_to_serves_missing_names(make_server, make_client):
    backend, _ = make_server()
    backend.register_rpc(name='behind')(lambda: 'from backend')
    front, endpoint = make_server(proxy_to=backend)
    client = make_client(front.user_id, endpoint)
    assert client.behind().get() == 'from backend'


def test_unpackable_result_becomes_error(pair):
    server, client = pair
    server.register_rpc(name='odd')(lambda: object())
    with pytest.raises(TypeError, match='Unknown type'):
        client.odd().get()


def test_import_needs_only_gevent(tmp_path):
    """pyzmq, msgpack and zope.component blocked: pseud still imports and
    calls. zope.interface is gevent's own dependency: pseud's interfaces
    are real ones."""
    script = textwrap.dedent('''
        import sys
        import gevent, gevent.hub, gevent._waiter
        def blocked(name):
            return (name.split('.')[0] in ('zmq', 'msgpack')
                    or name.startswith('zope.component'))
        for name in list(sys.modules):
            if blocked(name):
                sys.modules[name] = None    # pseud must not reach them
        class Block:
            def find_spec(self, name, path=None, target=None):
                if blocked(name):
                    raise ImportError('blocked ' + name)
        sys.meta_path.insert(0, Block())
        import pseud
        s = pseud.Server('s')
        ep = s.bind('tcp://127.0.0.1:*')
        s.register_rpc(str.upper)
        s.start()
        c = pseud.Client('s')
        c.connect(ep)
        print(c.upper('ok').get())
        assert pseud.interfaces.IClient.providedBy(c)  # real zope interfaces
        c.stop(); s.stop()
    ''')
    out = subprocess.run([sys.executable, '-c', script], capture_output=True,
                         text=True, timeout=30, env=dict(os.environ),
                         cwd=os.path.dirname(os.path.abspath(__file__)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == 'OK'


def test_calls_queued_in_one_batch_run_concurrently_when_they_block(pair):
    # Queued calls run one after another in one worker while they do not
    # block; one that blocks must hand the rest to another worker. Every
    # call here waits until all of them have started: run one at a time,
    # they would never finish.
    server, client = pair
    n = 50
    started = []
    everyone_in = gevent.event.Event()

    @server.register_rpc(name='rendezvous')
    def rendezvous(i):
        started.append(i)
        if len(started) == n:
            everyone_in.set()
        everyone_in.wait(10)
        return everyone_in.is_set()

    futures = [client.rendezvous(i) for i in range(n)]
    assert [f.get(timeout=15) for f in futures] == [True] * n
    assert sorted(started) == list(range(n))


def _held_calls(server, n):
    """Register 'held': each call waits until all n have arrived, so that
    their replies leave together and the client reads them in few batches."""
    arrived = []
    everyone_in = gevent.event.Event()

    @server.register_rpc(name='held')
    def held(i):
        arrived.append(i)
        if len(arrived) == n:
            everyone_in.set()
        everyone_in.wait(10)
        return i


def test_replies_read_together_wake_every_waiting_greenlet(pair):
    # The reader handles up to 64 replies per wake-up, in the hub; each
    # resolved future wakes its greenlet. 100 greenlets each waiting on
    # one call, all replies sent together: every one wakes with its own
    # result.
    server, client = pair
    n = 100
    _held_calls(server, n)
    jobs = [gevent.spawn(lambda i=i: client.held(i).get(timeout=10)) for i in range(n)]
    gevent.joinall(jobs, timeout=15, raise_error=True)
    assert [job.value for job in jobs] == list(range(n))
    assert client.future_pool == {}


def test_a_woken_greenlet_stopping_the_client_loses_no_other_waiter(pair):
    # The first greenlet woken by a batch of replies stops the client
    # while other replies of the batch are read or waiting: each call still
    # ends, with its result (its reply was read) or ConnectionAbortedError
    # (it was not); one left waiting would raise gevent.Timeout in its job.
    server, client = pair
    n = 60
    _held_calls(server, n)
    outcomes = {}

    def call(i):
        try:
            outcomes[i] = client.held(i).get(timeout=10)
        except ConnectionAbortedError as exc:
            outcomes[i] = exc
        if len(outcomes) == 1:
            client.stop()

    jobs = [gevent.spawn(call, i) for i in range(n)]
    gevent.joinall(jobs, timeout=15, raise_error=True)
    assert all(job.successful() for job in jobs)
    assert sorted(outcomes) == list(range(n))
    results = [v for v in outcomes.values() if not isinstance(v, Exception)]
    assert results and all(outcomes[v] == v for v in results)
    assert client.future_pool == {}
