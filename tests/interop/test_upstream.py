"""Interoperability with upstream pseud 1.0.1 (PyPI), wire protocol v1
(docs/guide/errors.rst, docs/protocol.rst): our server on this process's gevent hub against an
upstream client process, and an upstream server process against our Client.

Upstream runs in its own environment (.venv-interop, made by
scripts/setup-env.sh: pseud_interop_venv; scripts/test.sh exports its
python as PSEUD_INTEROP_PYTHON) through upstream_peer.py, which applies the
pyzmq/msgpack shims upstream 1.0.1 needs on today's pyzmq and msgpack. Without that variable (a
bare `pytest`) these tests skip, saying so.

The test process never blocks its hub on a subprocess: output goes to
files that are polled with gevent.sleep, every wait is bounded, and every
peer is killed in a finalizer.
"""
import base64
import collections
import datetime
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time

import gevent
import pytest

import pseud
from pseud.interfaces import ServiceNotFoundError

from naming import unique

INTEROP_PYTHON = os.environ.get('PSEUD_INTEROP_PYTHON')
HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, 'upstream_peer.py')

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        not INTEROP_PYTHON,
        reason='PSEUD_INTEROP_PYTHON is not set: run `bash scripts/test.sh`, which '
               'creates .venv-interop with upstream pseud 1.0.1 and exports it'),
]

# The environment variables of this process that must not reach upstream's
# interpreter: our build on PYTHONPATH would shadow upstream's `pseud`, and
# the ASan run's preload and allocator settings are for our extension.
_NOT_FOR_UPSTREAM = ('PYTHONPATH', 'LD_PRELOAD', 'ASAN_OPTIONS', 'PYTHONMALLOC',
                     'PYTHONSAFEPATH', 'PYTHONHOME')

UTC = datetime.timezone.utc
CEST = datetime.timezone(datetime.timedelta(hours=2), 'CEST')


# --- security options -------------------------------------------------------

# How a test sets up security on both sides. `ours` are keyword arguments of
# our Server/Client, `upstream` those of upstream's (strings "b:..." become
# bytes in the peer), `plugin_module` a module the peer imports first to
# register upstream backends (upstream 1.0.1 ships only noop). Every helper
# below takes one; the noop case is the default.
Security = collections.namedtuple('Security', 'ours upstream plugin_module')
NOOP = Security(ours={}, upstream={}, plugin_module=None)


def _security_argv(security):
    argv = []
    if security.upstream:
        argv += ['--options', json.dumps(security.upstream)]
    if security.plugin_module:
        argv += ['--plugin-module', security.plugin_module]
    return argv


# --- the upstream process ---------------------------------------------------

def dump(value):
    return base64.b64encode(pickle.dumps(value)).decode('ascii')


def load(text):
    return pickle.loads(base64.b64decode(text))


def call(name, *args, **kwargs):
    """One call for an upstream client to make."""
    return {'name': name, 'args': dump(args), 'kwargs': dump(kwargs)}


def value_of(entry):
    """The value of an upstream client's result entry, which must be OK."""
    assert 'ok' in entry, 'upstream got an error: %r' % (entry,)
    return load(entry['ok'])


class UpstreamPeer:
    """upstream_peer.py in a subprocess; its stdout/stderr go to files."""

    def __init__(self, argv, stdin_obj=None):
        self.dir = tempfile.mkdtemp(prefix='pseud-interop-')
        env = {k: v for k, v in os.environ.items() if k not in _NOT_FOR_UPSTREAM}
        stdin_path = os.path.join(self.dir, 'stdin.json')
        with open(stdin_path, 'w') as f:
            json.dump(stdin_obj if stdin_obj is not None else [], f)
        self.out_path = os.path.join(self.dir, 'stdout')
        self.err_path = os.path.join(self.dir, 'stderr')
        with open(stdin_path) as fin, open(self.out_path, 'w') as fout, \
                open(self.err_path, 'w') as ferr:
            self.proc = subprocess.Popen([INTEROP_PYTHON, PEER] + argv, stdin=fin,
                                         stdout=fout, stderr=ferr, cwd=HERE, env=env)

    def messages(self):
        with open(self.out_path) as f:
            text = f.read()
        return [json.loads(line) for line in text.split('\n')[:-1] if line]

    def stderr(self):
        with open(self.err_path) as f:
            return f.read()[-4000:]

    def wait_for(self, key, timeout=30):
        """The first message carrying `key`, polling cooperatively."""
        deadline = time.monotonic() + timeout
        while True:
            for msg in self.messages():
                if key in msg:
                    return msg
            if self.proc.poll() is not None:
                # it may have written its last line just before exiting
                for msg in self.messages():
                    if key in msg:
                        return msg
                pytest.fail('upstream peer exited (%s) without %r:\n%s'
                            % (self.proc.returncode, key, self.stderr()))
            if time.monotonic() > deadline:
                pytest.fail('upstream peer: no %r within %ss:\n%s'
                            % (key, timeout, self.stderr()))
            gevent.sleep(0.02)

    def wait_exit(self, timeout=30):
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                pytest.fail('upstream peer still running after %ss' % timeout)
            gevent.sleep(0.02)
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:   # pragma: no cover
            pass


@pytest.fixture
def upstream(request):
    """upstream(argv, stdin_obj=None) -> UpstreamPeer, killed at teardown."""
    if not (os.path.isfile(INTEROP_PYTHON) and os.access(INTEROP_PYTHON, os.X_OK)):
        pytest.fail('PSEUD_INTEROP_PYTHON=%r is not an executable' % INTEROP_PYTHON)
    peers = []

    def factory(argv, stdin_obj=None):
        peer = UpstreamPeer(argv, stdin_obj)
        peers.append(peer)
        return peer

    yield factory
    for peer in peers:
        peer.kill()


@pytest.fixture
def upstream_server(upstream, make_client):
    """upstream_server(security=NOOP, **client_options) -> (peer, our client
    connected to it)."""
    def factory(security=NOOP, **client_options):
        user_id = unique('upsrv')
        peer = upstream(['server', '--user-id', user_id] + _security_argv(security))
        endpoint = peer.wait_for('endpoint')['endpoint']
        options = dict(security.ours, **client_options)
        return peer, make_client(user_id, endpoint, **options)
    return factory


@pytest.fixture
def upstream_client(upstream):
    """upstream_client(endpoint, peer_id, calls, security=NOOP, concurrent=False,
    identity=None, serve_for=0, sync=False) -> the peer, started (not waited
    for); sync=True uses upstream's SyncClient (REQ socket)."""
    def factory(endpoint, peer_id, calls, security=NOOP, concurrent=False,
                identity=None, serve_for=0, sync=False):
        argv = ['client', endpoint, peer_id.decode() if isinstance(peer_id, bytes) else peer_id]
        if concurrent:
            argv.append('--concurrent')
        if sync:
            argv.append('--sync')
        if identity is not None:
            argv += ['--identity', identity]
        if serve_for:
            argv += ['--serve-for', str(serve_for)]
        return upstream(argv + _security_argv(security), calls)
    return factory


@pytest.fixture
def ours(make_server, upstream_client):
    """ours(calls, security=NOOP, **peer_args) -> (our server, results of an
    upstream client making `calls` to it). The server serves `echo`, `types`,
    `string.upper`, `fail`, `add_days`, `big`, `length`, `whoami`, `slow`."""
    def factory(calls, security=NOOP, server=None, **peer_args):
        if server is None:
            server, endpoint = make_server(**security.ours)
            register_ours(server)
        else:
            endpoint = server.last_endpoint
        peer = upstream_client(endpoint, server.user_id, calls, security=security,
                               **peer_args)
        results = peer.wait_for('results')['results']
        assert len(results) == len(calls)
        return server, results
    return factory


def register_ours(server):
    reg = server.register_rpc
    reg(name='string.upper')(str.upper)
    reg(name='echo')(lambda *args, **kwargs: (args, kwargs))
    reg(name='types')(lambda *args, **kwargs: (
        [type(a).__name__ for a in args], {k: type(v).__name__ for k, v in kwargs.items()}))

    @reg(name='fail')
    def fail(message='ours says no'):
        raise ValueError(message)

    reg(name='add_days')(lambda when, n: when + datetime.timedelta(days=n))
    reg(name='big')(lambda size: b'x' * size)
    reg(name='length')(len)
    reg(name='whoami', with_identity=True)(lambda user_id: user_id)

    @reg(name='slow')
    def slow(i):
        gevent.sleep(0.05)      # keeps all the calls in flight at once
        return i * 2


PLAIN_ARGS = (1, -7, 2 ** 64 - 1, -2 ** 63, 2.5, 'text', 'üñí', b'raw\x00\xff', None,
              True, [1, [2, 'x']], {'k': [3], 'n': None}, '', b'')
# arrays come back as tuples on both sides
PLAIN_ARGS_DECODED = (1, -7, 2 ** 64 - 1, -2 ** 63, 2.5, 'text', 'üñí', b'raw\x00\xff', None,
                      True, (1, (2, 'x')), {'k': (3,), 'n': None}, '', b'')
PLAIN_TYPES = ['int', 'int', 'int', 'int', 'float', 'str', 'str', 'bytes', 'NoneType',
               'bool', 'tuple', 'dict', 'str', 'bytes']
DATES = {
    'naive': datetime.datetime(2003, 9, 27, 9, 40, 1, 521290),
    'utc': datetime.datetime(2003, 9, 27, 9, 40, 1, 521290, tzinfo=UTC),
    'cest': datetime.datetime(2024, 6, 30, 23, 59, 59, tzinfo=CEST),
    'day': datetime.date(2000, 2, 29),
    'delta': datetime.timedelta(days=-1, seconds=3, microseconds=7),
    'tz': CEST,
}


# --- our server, upstream client -----------------------------------------------

def test_upstream_client_plain_values(ours):
    server, results = ours([
        call('echo', *PLAIN_ARGS),
        call('types', *PLAIN_ARGS, when=None, blob=b'x', word='y'),
        call('echo', 'a', key='value', other=[1, 2]),
        call('echo'),
    ])
    assert value_of(results[0]) == (PLAIN_ARGS_DECODED, {})
    # what our server decoded from upstream's msgpack
    assert value_of(results[1]) == (tuple(PLAIN_TYPES),
                                    {'when': 'NoneType', 'blob': 'bytes', 'word': 'str'})
    assert value_of(results[2]) == (('a',), {'key': 'value', 'other': (1, 2)})
    assert value_of(results[3]) == ((), {})


def test_upstream_client_dotted_name(ours):
    server, results = ours([call('string.upper', 'hello'), call('string.upper', 'déjà')])
    assert [value_of(r) for r in results] == ['HELLO', 'DÉJÀ']


def test_our_error_reaches_upstream_as_valueerror(ours):
    server, results = ours([call('fail', 'bad value here'), call('string.upper', 'still')])
    err = results[0]
    assert err['error'] == 'ValueError'
    assert 'bad value here' in err['message']
    assert '-- Beginning of remote traceback --' in err['message']
    assert 'raise ValueError' in err['message']
    assert value_of(results[1]) == 'STILL'     # our server kept serving


def test_upstream_client_service_not_found(ours):
    server, results = ours([call('no.such.thing', 1)])
    assert results[0]['error'] == 'ServiceNotFoundError'
    assert 'no.such.thing' in results[0]['message']


def test_datetimes_from_upstream_client(ours):
    server, results = ours([
        call('echo', **DATES),
        call('types', *DATES.values()),
        call('add_days', DATES['utc'], 3),
        call('add_days', DATES['cest'], -400),
        call('add_days', DATES['day'], 1),
    ])
    assert value_of(results[0]) == ((), DATES)
    echoed = value_of(results[0])[1]
    assert echoed['utc'].tzinfo == UTC
    assert echoed['cest'].utcoffset() == datetime.timedelta(hours=2)
    # ext 125 is tried before 126: a datetime stays a datetime
    assert value_of(results[1]) == (
        ("datetime", "datetime", "datetime", "date", "timedelta", "timezone"), {})
    assert value_of(results[2]) == DATES['utc'] + datetime.timedelta(days=3)
    assert value_of(results[3]) == DATES['cest'] - datetime.timedelta(days=400)
    assert value_of(results[3]).tzinfo == CEST
    assert value_of(results[4]) == datetime.date(2000, 3, 1)


def test_zoneinfo_datetime_from_upstream_client(ours):
    zoneinfo = pytest.importorskip('zoneinfo')
    try:
        paris = zoneinfo.ZoneInfo('Europe/Paris')
    except zoneinfo.ZoneInfoNotFoundError:
        pytest.skip('no tz database on this machine')
    when = datetime.datetime(2024, 3, 31, 1, 30, tzinfo=paris)
    server, results = ours([call('add_days', when, 1), call('echo', when)])
    assert value_of(results[0]) == when + datetime.timedelta(days=1)
    assert value_of(results[1]) == ((when,), {})
    assert value_of(results[1])[0][0].tzinfo is paris


def test_large_payloads_with_upstream_client(ours):
    blob = os.urandom(1 << 20)
    server, results = ours([call('length', blob), call('big', 1 << 20), call('echo', blob)])
    assert value_of(results[0]) == 1 << 20
    assert value_of(results[1]) == b'x' * (1 << 20)
    assert value_of(results[2]) == ((blob,), {})


def test_200_calls_in_flight_from_upstream_client(ours):
    started = time.monotonic()
    server, results = ours([call('slow', i) for i in range(200)], concurrent=True)
    assert [value_of(r) for r in results] == [i * 2 for i in range(200)]
    # in flight together on our side: far less than 200 * 0.05 s
    assert time.monotonic() - started < 8


def test_upstream_client_is_anonymous_with_noop(ours):
    # noop security: no ZAP, so our server sees every peer as user id b''.
    # That is why a server cannot call an upstream client back by user id
    # under noop (see test_our_server_calls_upstream_client below).
    server, results = ours([call('whoami')])
    assert value_of(results[0]) == b''


def test_upstream_syncclient_to_our_server(ours):
    # upstream's SyncClient talks through a REQ socket: our ROUTER gets the
    # same six frames (docs/protocol.rst) and answers to the REQ envelope
    server, results = ours([
        call('string.upper', 'sync'),
        call('echo', *PLAIN_ARGS, when=DATES['utc']),
        call('fail', 'sync says no'),
        call('no.such.thing'),
        call('add_days', DATES['day'], 1),
    ], sync=True)
    assert value_of(results[0]) == 'SYNC'
    assert value_of(results[1]) == (PLAIN_ARGS_DECODED, {'when': DATES['utc']})
    assert results[2]['error'] == 'ValueError' and 'sync says no' in results[2]['message']
    assert results[3]['error'] == 'ServiceNotFoundError'
    assert value_of(results[4]) == datetime.date(2000, 3, 1)


def test_probes_do_not_disturb_our_server(make_server, upstream_client):
    # Each upstream client sends the two-frame probe [routing_id, b''] on
    # connect (ZMQ_PROBE_ROUTER). Several at once, plus bare probing sockets
    # that never send anything else, must not disturb our server.
    zmq = pytest.importorskip('zmq')
    server, endpoint = make_server()
    register_ours(server)
    ctx = zmq.Context()
    probes = []
    try:
        for _ in range(5):
            s = ctx.socket(zmq.ROUTER)
            s.setsockopt(zmq.PROBE_ROUTER, 1)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(endpoint)
            probes.append(s)
        peers = [upstream_client(endpoint, server.user_id,
                                 [call('string.upper', 'p%d' % i), call('echo', i)])
                 for i in range(3)]
        for i, peer in enumerate(peers):
            results = peer.wait_for('results')['results']
            assert value_of(results[0]) == 'P%d' % i
            assert value_of(results[1]) == ((i,), {})
        assert server.started
        assert not server.future_pool
    finally:
        for s in probes:
            s.close(0)
        ctx.term()


def test_our_server_calls_upstream_client(make_server, upstream_client):
    # Under noop security our server cannot know an upstream client's user id
    # (b'' for everyone) nor, through pseud's API, its routing id: ZeroMQ
    # picks a random one and upstream's Client refuses routing_id=. With a
    # security plugin the server maps the authenticated user id to the
    # routing id. Here the peer gives its socket a fixed identity (what that
    # mapping would yield), so send_to() reaches it over the wire, and
    # upstream's client serves our server's calls.
    server, endpoint = make_server()
    register_ours(server)
    identity = unique('upcli')
    peer = upstream_client(endpoint, server.user_id, [call('string.upper', 'first')],
                           identity=identity, serve_for=30)
    assert value_of(peer.wait_for('results')['results'][0]) == 'FIRST'
    peer.wait_for('serving')
    them = server.send_to(identity)
    assert them.client.hello('ours').get() == 'hello ours from upstream client'
    assert them.string.upper('abc').get() == 'ABC'
    when = DATES['utc']
    assert them.add_days(when, 2).get() == when + datetime.timedelta(days=2)
    with pytest.raises(ValueError) as info:
        them.fail('from upstream client').get()
    assert 'from upstream client' in str(info.value)
    assert '-- Beginning of remote traceback --' in str(info.value)
    with pytest.raises(ServiceNotFoundError):
        them.nothing.here().get()
    futures = [them.echo(i) for i in range(50)]
    gevent.wait(futures, timeout=20)
    assert [f.get(timeout=0) for f in futures] == [((i,), {}) for i in range(50)]


# --- upstream server, our client ------------------------------------------------

def test_our_client_plain_values(upstream_server):
    peer, client = upstream_server()
    assert client.echo(*PLAIN_ARGS).get() == (PLAIN_ARGS_DECODED, {})
    # what upstream decoded from our msgpack
    assert client.types(*PLAIN_ARGS, blob=b'x', word='y', nothing=None).get() == (
        tuple(PLAIN_TYPES), {'blob': 'bytes', 'word': 'str', 'nothing': 'NoneType'})
    assert client.echo('a', key='value', other=[1, 2]).get() == (('a',), {'key': 'value',
                                                                         'other': (1, 2)})
    assert client.echo().get() == ((), {})


def test_our_client_dotted_name(upstream_server):
    peer, client = upstream_server()
    assert client.string.upper('hello').get() == 'HELLO'
    assert client.send_work(client.peer_routing_id, 'string.upper', 'déjà').get() == 'DÉJÀ'


def test_upstream_error_reaches_our_client_as_valueerror(upstream_server):
    peer, client = upstream_server()
    with pytest.raises(ValueError) as info:
        client.fail('bad value there').get()
    text = str(info.value)
    assert 'bad value there' in text
    assert '-- Beginning of remote traceback --' in text
    assert 'raise ValueError(message)' in text      # upstream_peer.py's source line
    assert client.string.upper('still').get() == 'STILL'


def test_upstream_service_not_found(upstream_server):
    peer, client = upstream_server()
    with pytest.raises(ServiceNotFoundError) as info:
        client.no.such.thing(1).get()
    assert 'no.such.thing' in str(info.value)


def test_datetimes_with_upstream_server(upstream_server):
    peer, client = upstream_server()
    assert client.echo(**DATES).get() == ((), DATES)
    assert client.types(*DATES.values()).get() == (
        ('datetime', 'datetime', 'datetime', 'date', 'timedelta', 'timezone'), {})
    got = client.add_days(DATES['cest'], 10).get()
    assert got == DATES['cest'] + datetime.timedelta(days=10)
    assert got.tzinfo == CEST
    assert client.add_days(DATES['naive'], -1).get() == DATES['naive'] - datetime.timedelta(days=1)
    assert client.add_days(DATES['day'], 366).get() == datetime.date(2001, 3, 1)


def test_large_payloads_with_upstream_server(upstream_server):
    peer, client = upstream_server()
    blob = os.urandom(1 << 20)
    assert client.length(blob).get() == 1 << 20
    assert client.big(1 << 20).get() == b'x' * (1 << 20)
    assert client.echo(blob).get() == ((blob,), {})


def test_200_calls_in_flight_to_upstream_server(upstream_server):
    peer, client = upstream_server(timeout=20)
    futures = [client.echo(i, s='x' * i) for i in range(200)]
    gevent.wait(futures, timeout=30)
    assert [f.get(timeout=0) for f in futures] == [((i,), {'s': 'x' * i}) for i in range(200)]
    assert not client.future_pool


def test_upstream_server_calls_our_client_back(upstream_server):
    # Upstream awaits each WORK handler inside its only reader task, so its
    # handler cannot await a call of its own (it would wait for a reply only
    # that reader could read): the peer's call_back() fires the call as a
    # task and callback_results() reports it. Under noop upstream cannot name
    # our client either; the peer uses the routing id of the last message.
    peer, client = upstream_server()
    client.register_rpc(name='mine.hello')(lambda who: 'hello %s from ours' % who)

    @client.register_rpc(name='mine.fail')
    def fail():
        raise ValueError('ours refuses')

    def results_after(count, name, *args):
        assert client.call_back(name, *args).get() is True
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            got = client.callback_results().get()
            if len(got) >= count:
                return got
            gevent.sleep(0.05)
        pytest.fail('upstream server never reported its call back')

    got = results_after(1, 'mine.hello', 'upstream')
    assert len(got) == 1 and load(got[0]['ok']) == 'hello upstream from ours'
    got = results_after(2, 'mine.fail')
    assert got[1]['error'] == 'ValueError' and 'ours refuses' in got[1]['message']


def test_upstream_cannot_take_int_map_keys(upstream_server):
    # Upstream 1.0.1 limitation (with msgpack >= 1.0, strict_map_key): a map
    # with int keys cannot be unpacked there; upstream's reader task dies on
    # the exception, so the call (and later ones) time out instead of
    # answering ERROR. We decode int keys (docs/protocol.rst); upstream does not.
    peer, client = upstream_server(timeout=1)
    with pytest.raises(gevent.Timeout):
        client.echo({1: 'one'}).get()
    assert 'int is not allowed for map key' in peer.stderr() \
        or 'Unpacking failed' in peer.stderr()
    with pytest.raises(gevent.Timeout):
        client.string.upper('after').get()      # that upstream server is gone deaf


# --- the 'heartbeat' plugin against peers that know nothing of it --------------
# ZMTP PING/PONG is answered by upstream's libzmq itself: calls keep working
# across many heartbeat intervals, with idle stretches in between.

HEARTBEAT = {'heartbeat_plugin': 'heartbeat', 'heartbeat_interval': 0.2}


def test_upstream_client_to_our_server_with_heartbeat(make_server, ours):
    server, _ = make_server(**HEARTBEAT)
    register_ours(server)

    @server.register_rpc(name='nap')
    def nap(seconds):
        gevent.sleep(seconds)
        return seconds

    calls = [call('slow', 1), call('nap', 0.8), call('slow', 2), call('nap', 0.5),
             call('slow', 3)]
    _, results = ours(calls, server=server)
    assert [value_of(r) for r in results] == [2, 0.8, 4, 0.5, 6]


def test_our_client_with_heartbeat_to_upstream_server(upstream_server, caplog):
    peer, client = upstream_server(**HEARTBEAT)
    with caplog.at_level('DEBUG', logger='pseud'):
        for i in range(4):
            assert client.string.upper('idle %d' % i).get(timeout=10) == 'IDLE %d' % i
            gevent.sleep(0.4)       # four intervals with nothing but heartbeats
    assert 'disconnected' not in caplog.text
    assert 'lost the connection' not in caplog.text
