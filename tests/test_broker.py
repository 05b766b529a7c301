"""The load-balancing broker (docs/guide/scaling.rst): pseud.Broker in this
process, workers in this process or as subprocesses (tests/broker_worker.py),
clients connecting to the broker as to Server('svc').

Every wait is bounded; worker processes are killed and brokers, servers and
clients stopped in finalizers; endpoints are tcp://127.0.0.1:* read back.
"""
import os
import signal
import subprocess
import sys
import time

import gevent
import gevent.event
import pytest

import pseud
from pseud import _pseud

from naming import unique

pytestmark = pytest.mark.timeout(60)

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, 'broker_worker.py')
ANY = 'tcp://127.0.0.1:*'


def wait_until(predicate, timeout=10, what='the condition'):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail('%s did not happen within %ss' % (what, timeout))
        gevent.sleep(0.02)


@pytest.fixture
def make_broker():
    made = []

    def factory(service=None, **options):
        broker = pseud.Broker(service or unique('svc'), frontend=ANY, backend=ANY, **options)
        made.append(broker)
        return broker.start()

    yield factory
    for broker in made:
        broker.stop()


@pytest.fixture
def make_worker():
    """make_worker(broker, register=None) -> an in-process worker Server."""
    made = []

    def factory(broker, register=None, broker_public_key=None, **options):
        server = pseud.Server(broker.service_id, **options)
        made.append(server)
        if register is not None:
            register(server)
        server.connect_broker(broker.backend_endpoint, broker_public_key=broker_public_key)
        server.start()
        return server

    yield factory
    for server in made:
        server.stop()


class WorkerProcess:
    def __init__(self, broker):
        self.proc = subprocess.Popen(
            [sys.executable, WORKER, broker.backend_endpoint, broker.service_id.decode()],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=HERE)
        self.pid = self.proc.pid

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


@pytest.fixture
def worker_processes():
    """worker_processes(broker, n) -> n worker subprocesses, joined."""
    made = []

    def factory(broker, n):
        before = len(broker.stats()['workers'])
        procs = [WorkerProcess(broker) for _ in range(n)]
        made.extend(procs)
        wait_until(lambda: len(broker.stats()['workers']) >= before + n, timeout=30,
                   what='%d worker processes joining' % n)
        return procs

    yield factory
    for proc in made:
        proc.kill()


@pytest.fixture
def client_of(make_client):
    def factory(broker, **options):
        return make_client(broker.service_id, broker.frontend_endpoint, **options)
    return factory


def serve_basics(server):
    server.register_rpc(name='pid')(os.getpid)
    server.register_rpc(name='echo')(lambda *a, **k: (a, k))
    server.register_rpc(name='whoami', with_identity=True)(lambda user_id: user_id)

    @server.register_rpc(name='fail')
    def fail():
        raise ValueError('worker says no')


# ------------------------------------------------------------ routing

def test_calls_through_the_broker_to_one_worker(make_broker, make_worker, client_of):
    broker = make_broker()
    make_worker(broker, serve_basics)
    wait_until(lambda: len(broker.stats()['workers']) == 1, what='the worker joining')
    client = client_of(broker)
    assert client.echo(1, 'two', three=b'3').get() == ((1, 'two'), {'three': b'3'})
    with pytest.raises(ValueError, match='worker says no'):
        client.fail().get()
    with pytest.raises(pseud.interfaces.ServiceNotFoundError):
        client.nothing_here().get()
    # no security at the frontend: the caller is anonymous, as on a plain server
    assert client.whoami().get() == b''
    stats = broker.stats()
    assert stats['routed'] == stats['replied'] == 4
    assert stats['in_flight'] == stats['queued'] == 0


def test_two_worker_processes_share_the_calls(make_broker, worker_processes, client_of):
    broker = make_broker()
    procs = worker_processes(broker, 2)
    client = client_of(broker, timeout=20)
    pids = [f.get() for f in [client.nap(0.2) for _ in range(6)]]
    assert set(pids) == {p.pid for p in procs}
    served = [w['served'] for w in broker.stats()['workers'].values()]
    assert sorted(served) == [3, 3]


def test_least_outstanding_and_max_in_flight(make_broker, worker_processes, client_of):
    """Two workers whose handler holds the whole process: with max_in_flight=1
    each runs one call, the others wait in the broker's queue."""
    broker = make_broker(max_in_flight=1, timeout=30)
    procs = worker_processes(broker, 2)
    client = client_of(broker, timeout=30)
    futures = [client.block(0.8) for _ in range(4)]
    wait_until(lambda: broker.stats()['in_flight'] == 2 and broker.stats()['queued'] == 2,
               what='two calls running and two queued')
    assert [w['in_flight'] for w in broker.stats()['workers'].values()] == [1, 1]
    pids = [f.get() for f in futures]
    assert sorted(pids) == sorted([p.pid for p in procs] * 2)


def test_max_in_flight_defaults_to_64(make_broker, make_worker, client_of):
    """docs/guide/scaling.rst: max_in_flight (64). A broker made without it
    gives one worker 64 calls at once and queues the rest."""
    from pseud import _broker_cli
    from pseud.broker import DEFAULT_MAX_IN_FLIGHT
    # only max_in_flight is left to its default: the queue's timeout must
    # outlast the wait for the 64 calls on a loaded machine
    broker = make_broker(timeout=30)
    release = gevent.event.Event()
    running = []

    def register(server):
        @server.register_rpc(name='held')
        def held(n):
            running.append(n)
            release.wait()
            return n * 2

    make_worker(broker, register)
    wait_until(lambda: len(broker.stats()['workers']) == 1, what='the worker joining')
    client = client_of(broker, timeout=30)
    futures = [client.held(n) for n in range(70)]
    try:
        wait_until(lambda: len(running) == 64 and broker.stats()['queued'] == 6,
                   what='64 calls running at the worker and 6 queued')
        gevent.sleep(0.3)     # the limit holds: no 65th call reaches the worker
        stats = broker.stats()
        assert len(running) == 64
        assert stats['in_flight'] == 64 and stats['queued'] == 6
        assert [w['in_flight'] for w in stats['workers'].values()] == [64]
    finally:
        release.set()
    assert [f.get() for f in futures] == [n * 2 for n in range(70)]
    assert sorted(running) == list(range(70))
    stats = broker.stats()
    assert stats['routed'] == stats['replied'] == 70
    assert stats['in_flight'] == stats['queued'] == 0
    # the same default for pseud.Broker and `pseud broker` (--max-in-flight)
    assert DEFAULT_MAX_IN_FLIGHT == 64
    args = _broker_cli.build_parser().parse_args(
        ['--frontend', ANY, '--backend', ANY, '--id', 'svc'])
    assert args.max_in_flight == DEFAULT_MAX_IN_FLIGHT
    assert '(default 64)' in ' '.join(_broker_cli.build_parser().format_help().split())


@pytest.mark.timeout(120)
@pytest.mark.parametrize('clients', [1, 2])
def test_flood_longer_than_one_wake_up_loses_nothing(make_broker, make_worker, client_of,
                                                      clients):
    """A wake-up of the broker moves at most 256 messages a socket a round
    and 4 rounds (src/broker_route.c): a pipelined flood of 3000 calls a
    client needs many, each queued again by the one before. Every call
    must come back with its own result. (A missed re-queue would only
    delay the rest until the broker's 0.1 s tick, which this cannot see;
    a message lost at a batch's edge fails it.)"""
    calls = 3000
    broker = make_broker(max_queue=clients * calls, timeout=60)
    make_worker(broker, lambda s: s.register_rpc(name='echo')(lambda payload: payload))
    wait_until(lambda: len(broker.stats()['workers']) == 1, what='the worker joining')
    senders = [client_of(broker, timeout=60) for _ in range(clients)]
    payloads = [[b'%d:%d:' % (c, n) + b'x' * (n % 97) for n in range(calls)]
                for c in range(clients)]
    futures = [[sender.echo(p) for p in sent] for sender, sent in zip(senders, payloads)]
    with gevent.Timeout(60, AssertionError('the flood did not come back within 60s')):
        results = [[f.get() for f in batch] for batch in futures]
    assert results == payloads
    stats = broker.stats()
    assert stats['routed'] == stats['replied'] == clients * calls
    assert stats['queued'] == stats['in_flight'] == 0
    assert stats['rejected'] == stats['expired'] == stats['lost'] == 0
    assert [w['served'] for w in stats['workers'].values()] == [clients * calls]


def test_least_outstanding_prefers_the_idle_worker(make_broker, make_worker, client_of):
    broker = make_broker(max_in_flight=10)
    seen = []

    def register(name):
        def reg(server):
            @server.register_rpc(name='nap')
            def nap(seconds):
                seen.append(name)
                gevent.sleep(seconds)
                return name
        return reg
    make_worker(broker, register('a'))
    make_worker(broker, register('b'))
    wait_until(lambda: len(broker.stats()['workers']) == 2, what='two workers joining')
    client = client_of(broker)
    long_call = client.nap(1.0)
    wait_until(lambda: len(seen) == 1, what='the long call starting')
    busy = seen[0]
    # while one worker holds a call, every short call goes to the other
    assert {client.nap(0).get() for _ in range(5)} == ({'a', 'b'} - {busy})
    assert long_call.get() == busy


# ------------------------------------------------------------ security

def test_plain_at_the_frontend_gives_the_worker_the_user_id(make_broker, make_worker,
                                                            client_of):
    broker = make_broker(security_plugin='trusted_peer')
    make_worker(broker, serve_basics)
    wait_until(lambda: broker.stats()['workers'], what='the worker joining')
    alice = client_of(broker, security_plugin='plain', user_id='alice', password='x')
    bob = client_of(broker, security_plugin='plain', user_id='bob', password='y')
    assert alice.whoami().get() == b'alice'
    assert bob.whoami().get() == b'bob'


def test_plain_login_refused_at_the_frontend(make_broker, make_worker, client_of):
    broker = make_broker(security_plugin='plain')     # login must equal password
    make_worker(broker, serve_basics)
    wait_until(lambda: broker.stats()['workers'], what='the worker joining')
    good = client_of(broker, security_plugin='plain', user_id='carol', password='carol')
    assert good.whoami().get() == b'carol'
    bad = client_of(broker, security_plugin='plain', user_id='mallory', password='x',
                    timeout=1)
    with pytest.raises(gevent.Timeout):
        bad.whoami().get()
    assert broker.stats()['routed'] == 1


def test_curve_at_the_frontend_gives_the_worker_the_user_id(make_broker, make_worker,
                                                            client_of):
    public, secret = pseud.curve_keypair()
    broker = make_broker(security_plugin='trusted_curve', public_key=public,
                         secret_key=secret)
    make_worker(broker, serve_basics)
    wait_until(lambda: broker.stats()['workers'], what='the worker joining')
    bob_public, bob_secret = broker.auth_backend.known_identities[b'bob']
    bob = client_of(broker, security_plugin='trusted_curve', public_key=bob_public,
                    secret_key=bob_secret, peer_public_key=public)
    assert bob.whoami().get() == b'bob'
    stranger_public, stranger_secret = pseud.curve_keypair()
    stranger = client_of(broker, security_plugin='trusted_curve', public_key=stranger_public,
                         secret_key=stranger_secret, peer_public_key=public, timeout=1)
    with pytest.raises(gevent.Timeout):
        stranger.whoami().get()


def test_curve_between_broker_and_workers(make_broker, make_worker, client_of):
    backend_public, backend_secret = pseud.curve_keypair()
    good_public, good_secret = pseud.curve_keypair()
    broker = make_broker(worker_keys={'w1': good_public}, backend_public_key=backend_public,
                         backend_secret_key=backend_secret)
    # a worker whose key the broker does not list never joins...
    stranger_public, stranger_secret = pseud.curve_keypair()
    stranger = pseud.Server(broker.service_id, public_key=stranger_public,
                            secret_key=stranger_secret)
    try:
        stranger.register_rpc(name='pid')(lambda: 'stranger')
        stranger.connect_broker(broker.backend_endpoint, broker_public_key=backend_public)
        stranger.start()
        # ...nor does one that speaks no CURVE at all
        plain = make_worker(broker, lambda s: s.register_rpc(name='pid')(lambda: 'plain'))
        client = client_of(broker, timeout=10)
        future = client.pid()
        wait_until(lambda: broker.stats()['queued'] == 1, what='the call waiting')
        gevent.sleep(0.5)
        assert broker.stats()['workers'] == {} and not future.ready()
        # the listed worker joins and takes the waiting call
        make_worker(broker, serve_basics, public_key=good_public, secret_key=good_secret,
                    broker_public_key=backend_public)
        assert future.get() == os.getpid()
        assert len(broker.stats()['workers']) == 1
        plain.stop()
    finally:
        stranger.stop()


def test_curve_between_broker_and_workers_misuse(make_broker):
    with pytest.raises(ValueError, match='worker_keys'):
        pseud.Broker(unique('svc'), worker_keys={'w': pseud.curve_keypair()[0]})
    broker = make_broker()
    with pytest.raises(ValueError, match='own key pair'):
        pseud.Server(broker.service_id).connect_broker(
            broker.backend_endpoint, broker_public_key=pseud.curve_keypair()[0])


def test_broker_refuses_plugins_it_cannot_run_in_c():
    with pytest.raises(ValueError, match='ZAP'):
        pseud.Broker(unique('svc'), security_plugin='untrusted_curve')


def test_send_to_from_a_worker_reaches_the_client(make_broker, make_worker, client_of):
    broker = make_broker(security_plugin='trusted_peer')
    workers = []

    def register(server):
        serve_basics(server)
        workers.append(server)

        @server.register_rpc(name='call_me_back', with_identity=True)
        def call_me_back(user_id, x):
            # a call from inside a call, to the caller, through the broker
            return server.send_to(user_id).double(x).get()

    make_worker(broker, register)
    wait_until(lambda: broker.stats()['workers'], what='the worker joining')
    clients = {}
    for name in ('c1', 'c2'):
        client = client_of(broker, security_plugin='plain', user_id=name, password='p')
        client.register_rpc(name='me')(lambda name=name: name)
        client.register_rpc(name='double')(lambda x, name=name: (name, x * 2))
        assert client.whoami().get() == name.encode()
        clients[name] = client
    assert clients['c1'].call_me_back(21).get() == ('c1', 42)
    assert clients['c2'].call_me_back(4).get() == ('c2', 8)
    worker = workers[0]
    assert worker.send_to('c2').me().get() == 'c2'
    assert worker.send_to(b'c1').me().get() == 'c1'
    with pytest.raises(ConnectionRefusedError):
        worker.send_to('nobody').me().get()
    assert broker.stats()['to_clients'] == 4


# ------------------------------------------------------------ faults

def test_worker_killed_mid_call_gets_an_error(make_broker, worker_processes, client_of):
    broker = make_broker(max_in_flight=4)
    (proc,) = worker_processes(broker, 1)
    # the client would wait 20 s: the error must come from the broker, long before
    client = client_of(broker, timeout=20)
    assert client.pid().get() == proc.pid
    futures = [client.nap(30) for _ in range(3)]
    wait_until(lambda: broker.stats()['in_flight'] == 3, what='three calls running')
    started = time.monotonic()
    os.kill(proc.pid, signal.SIGKILL)
    for f in futures:
        with pytest.raises(ConnectionAbortedError, match='may or may not have run'):
            f.get()
    took = time.monotonic() - started
    assert took < 10, 'the broker took %.1fs to notice' % took
    stats = broker.stats()
    assert stats['lost'] == 3 and stats['in_flight'] == 0 and stats['workers'] == {}


def test_no_worker_calls_wait_then_time_out(make_broker, client_of):
    broker = make_broker(timeout=0.5)
    # the broker's deadline comes first: it answers, the client need not wait
    patient = client_of(broker, timeout=20)
    future = patient.anything()
    wait_until(lambda: broker.stats()['queued'] == 1, what='the call queueing')
    with pytest.raises(TimeoutError, match="before the call's deadline"):
        future.get()
    assert broker.stats()['expired'] == 1 and broker.stats()['queued'] == 0
    # the client's deadline comes first: its own timeout, the broker forgets later
    hasty = client_of(broker, timeout=0.2)
    with pytest.raises(gevent.Timeout):
        hasty.anything().get()
    wait_until(lambda: broker.stats()['expired'] == 2, what='the broker expiring the call')
    assert broker.stats()['queued'] == 0


def test_waiting_call_is_served_by_a_worker_that_joins(make_broker, make_worker, client_of):
    broker = make_broker(timeout=10)
    client = client_of(broker, timeout=10)
    future = client.pid()
    wait_until(lambda: broker.stats()['queued'] == 1, what='the call queueing')
    make_worker(broker, serve_basics)
    assert future.get() == os.getpid()


def test_flood_past_the_queue_bound_is_refused(make_broker, client_of):
    broker = make_broker(max_queue=3, timeout=2)
    client = client_of(broker, timeout=2)
    futures = [client.anything(i) for i in range(10)]
    refused = 0
    for f in futures:
        try:
            f.get()
        except RuntimeError as exc:
            assert 'max_queue' in str(exc)
            refused += 1
        except gevent.Timeout:
            pass
    assert refused == 7
    stats = broker.stats()
    assert stats['rejected'] == 7


def test_broker_restart(make_broker, make_worker, client_of):
    service = unique('svc')
    first = make_broker(service)
    frontend, backend = first.frontend_endpoint, first.backend_endpoint
    make_worker(first, serve_basics)
    client = client_of(first, timeout=10)
    assert client.pid().get() == os.getpid()
    first.stop()
    gevent.sleep(0.3)
    second = pseud.Broker(service, frontend=frontend, backend=backend).start()
    try:
        # the worker and the client reconnect by themselves; the call made
        # while they do waits in the client's outbox
        assert client.echo('again').get() == (('again',), {})
        assert len(second.stats()['workers']) == 1
    finally:
        second.stop()


# ------------------------------------------------------------ hostile input

def raw_socket(kind, endpoint, routing_id=None):
    sock = _pseud.Context.instance().socket(kind)
    sock.linger = 0
    if routing_id is not None:
        sock.routing_id = routing_id
    sock.connect(endpoint)
    return sock


HOSTILE = [
    [b'one frame'],
    [b'', b'v2', b'id', b'\x03', b'body'],
    [b'', b'v1', b'x' * 65, b'\x03', b'body'],
    [b'', b'v1', b'id', b'\x03\x03', b'body'],
    [b'', b'v1', b'id', b'\x03', b'body', b'extra', b'more'],
    [b'', b'v1', b'12345678', b'\x01', b'forged reply'],
    [b'', b'v1', b'\xff' * 8, b'\x10', b'forged error'],
    [b'', b'v1', b'id', b'\x7f', b'unknown type'],
    [b'', b'v1', b'id', b'\x03', b'\xc1 not msgpack'],
    [b'not empty', b'v1', b'id', b'\x03', b'body'],
]


def test_hostile_frames_at_both_sockets(make_broker, make_worker, client_of):
    broker = make_broker()
    make_worker(broker, serve_basics)
    wait_until(lambda: broker.stats()['workers'], what='the worker joining')
    client = client_of(broker)
    front = raw_socket(_pseud.ROUTER, broker.frontend_endpoint)
    back = raw_socket(_pseud.DEALER, broker.backend_endpoint)
    try:
        gevent.sleep(0.2)   # front (a ROUTER) must have learnt the broker's id
        for round_ in range(20):
            for frames in HOSTILE:
                front.send_multipart([broker.service_id] + frames)
                back.send_multipart(frames)
            assert client.echo(round_).get() == ((round_,), {})
        stats = broker.stats()
        assert stats['bad_frontend'] > 0 and stats['bad_backend'] > 0
        # the hostile backend peer never became a worker
        assert len(stats['workers']) == 1
        assert stats['replied'] >= 20
    finally:
        front.close()
        back.close()


def test_predicates_on_the_worker_see_the_callers_user_id(make_broker, make_worker,
                                                          client_of):
    from pseud.auth import BaseAuthBackend
    from pseud.utils import register_auth_backend

    class Permissions:
        def __init__(self, granted):
            self.granted = granted

        def has_permission(self, permission):
            return permission in self.granted

    seen = []

    @register_auth_backend
    class WorkerPermissions(BaseAuthBackend):
        name = unique('worker_permissions')
        serves = 'server'

        def get_predicate_arguments(self, user_id):
            seen.append(user_id)
            return {'user': Permissions({'DoSomethingNasty'} if user_id == b'boss' else ())}

    def register(server):
        server.register_rpc(name='nasty', domain='restricted')(lambda: 'restricted')
        server.register_rpc(name='nasty')(lambda: 'default')

    broker = make_broker(security_plugin='trusted_peer')
    make_worker(broker, register, security_plugin=WorkerPermissions.name)
    wait_until(lambda: broker.stats()['workers'], what='the worker joining')
    boss = client_of(broker, security_plugin='plain', user_id='boss', password='x')
    pleb = client_of(broker, security_plugin='plain', user_id='pleb', password='x')
    assert boss.nasty().get() == 'restricted'
    assert pleb.nasty().get() == 'default'
    assert set(seen) == {b'boss', b'pleb'}


def test_connect_broker_misuse_is_explained(make_broker):
    broker = make_broker()
    server = pseud.Server(broker.service_id)
    try:
        server.bind(ANY)
        with pytest.raises(RuntimeError, match='before bind'):
            server.connect_broker(broker.backend_endpoint)
    finally:
        server.stop()
    worker = pseud.Server(broker.service_id)
    try:
        worker.connect_broker(broker.backend_endpoint)
        with pytest.raises(RuntimeError, match='only through its broker'):
            worker.bind(ANY)
    finally:
        worker.stop()
    with pytest.raises(ValueError, match='give the security plugin to the Broker'):
        pseud.Server(broker.service_id, security_plugin='trusted_peer').connect_broker(
            broker.backend_endpoint)
    with pytest.raises(TypeError, match='Server named by its service id'):
        pseud.Client(broker.service_id).connect_broker(broker.backend_endpoint)


# ------------------------------------------------------------ command line

class Command:
    """`python -m pseud ARGS` in a subprocess, its output in files polled
    cooperatively; killed in the fixture's finalizer."""

    def __init__(self, tmp_path, args, extra_path=None):
        name = unique('cmd')
        self.out_path, self.err_path = tmp_path / (name + '.out'), tmp_path / (name + '.err')
        env = dict(os.environ)
        if extra_path is not None:
            env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(extra_path),
                                                              env.get('PYTHONPATH')]))
        with open(self.out_path, 'w') as out, open(self.err_path, 'w') as err:
            self.proc = subprocess.Popen([sys.executable, '-m', 'pseud'] + list(args),
                                         stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                         env=env, cwd=self.out_path.parent)

    def line_with(self, text, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            for line in self.out_path.read_text().splitlines():
                if text in line:
                    return line
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail('no %r from %r: %s' % (text, self.proc.args,
                                                   self.err_path.read_text()[-2000:]))
            gevent.sleep(0.02)

    def wait(self, timeout=15):
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                pytest.fail('%r still running' % (self.proc.args,))
            gevent.sleep(0.02)
        return self.proc.returncode


@pytest.fixture
def command(tmp_path):
    made = []

    def factory(*args, extra_path=None):
        made.append(Command(tmp_path, args, extra_path))
        return made[-1]

    yield factory
    for cmd in made:
        if cmd.proc.poll() is None:
            cmd.proc.kill()
        cmd.proc.wait(timeout=10)


def test_pseud_broker_and_pseud_serve_broker(command, make_client, tmp_path):
    service = unique('svc')
    module = unique('brokered_mod')
    (tmp_path / (module + '.py')).write_text(
        'import os\n\n\ndef add(a, b):\n    return a + b\n\n\n'
        'def pid():\n    return os.getpid()\n')
    broker = command('broker', '--frontend', ANY, '--backend', ANY, '--id', service,
                     '--max-queue', '5')
    words = broker.line_with('pseud broker').split()
    frontend = words[words.index('frontend') + 1].rstrip(',')
    backend = words[words.index('backend') + 1]
    workers = [command('serve', module, '--broker', backend, '--id', service,
                       extra_path=tmp_path) for _ in range(2)]
    for worker in workers:
        worker.line_with('through the broker at')
    client = make_client(service, frontend, timeout=10)
    assert client.add(2, 3).get() == 5
    pids = set()
    deadline = time.monotonic() + 20
    while len(pids) < 2 and time.monotonic() < deadline:   # until both have joined
        pids.add(client.pid().get())
    assert pids == {w.proc.pid for w in workers}
    broker.proc.send_signal(signal.SIGTERM)
    assert broker.wait() == 0
    for worker in workers:
        worker.proc.send_signal(signal.SIGTERM)
        assert worker.wait() == 0


def test_pseud_serve_broker_refuses_security(command):
    ran = command('serve', 'os', '--broker', 'tcp://127.0.0.1:1', '--id', 's',
                  '--security', 'plain')
    assert ran.wait() == 64
    assert '--security goes to the broker' in ran.err_path.read_text()


@pytest.mark.parametrize('argv', [
    ['--frontend', ANY, '--backend', ANY],                       # no --id
    ['--frontend', ANY, '--backend', ANY, '--id', 's', '--allow', 'x=y'],
    ['--frontend', ANY, '--backend', ANY, '--id', 's', '--security', 'trusted_curve'],
    ['--frontend', 'nonsense://', '--backend', ANY, '--id', 's'],
])
def test_broker_command_line_usage_errors(argv, capsys):
    from pseud import _broker_cli
    assert _broker_cli.main(argv) == _broker_cli.EXIT_USAGE
    assert capsys.readouterr().err
