"""Faults (docs/guide/heartbeats.rst): peers that die (SIGKILL), freeze
(SIGSTOP) or are cut off (a relay that stops forwarding without closing),
with the 'heartbeat' plugin; and messages over max_message_size, which
cost one call, never the connection.

The peer under test runs in a subprocess (tests/fault_peer.py) so that it
can be killed or frozen; this process never blocks its hub on it: output is
polled with gevent.sleep and every wait is bounded.

Timing bound: the documented detection bound is two heartbeat intervals
plus 0.5 s (the plugin's own is two intervals plus 0.25 s). With INTERVAL =
0.5 s that is 1.5 s; the tests allow DETECTION_BOUND = 3.0 s, room for a
loaded 2-core machine, still far below the calls' 30 s timeout (what
happened before the heartbeat).

Oversized messages: max_message_size is scaled down to 1 MiB and payloads
to 2 MiB to keep the tests fast and light; the checks are the same as with
the 64 MiB default and 80 MiB payloads.
"""
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import gevent
import pytest

import pseud
from pseud.interfaces import MessageTooLargeError, PeerGoneError

from naming import unique

pytestmark = pytest.mark.timeout(90)

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, 'fault_peer.py')
INTERVAL = 0.5
DETECTION_BOUND = 2 * INTERVAL + 0.5 + 1.5
CALL_TIMEOUT = 30
HEARTBEAT = {'heartbeat_plugin': 'heartbeat', 'heartbeat_interval': INTERVAL}
MIB = 1024 * 1024


# --- subprocesses -----------------------------------------------------------

class Child:
    """tests/fault_peer.py in a subprocess; JSON lines on stdout (a file)."""

    def __init__(self, argv):
        self.dir = tempfile.mkdtemp(prefix='pseud-fault-')
        self.out_path = os.path.join(self.dir, 'stdout')
        self.err_path = os.path.join(self.dir, 'stderr')
        with open(self.out_path, 'w') as fout, open(self.err_path, 'w') as ferr:
            self.proc = subprocess.Popen([sys.executable, PEER] + argv,
                                         stdin=subprocess.PIPE, stdout=fout, stderr=ferr)

    def messages(self):
        with open(self.out_path) as f:
            return [json.loads(line) for line in f.read().split('\n')[:-1] if line]

    def wait_for(self, key, timeout=20, count=1):
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.messages() if key in m]
            if len(found) >= count:
                return found[count - 1]
            if self.proc.poll() is not None or time.monotonic() > deadline:
                with open(self.err_path) as f:
                    err = f.read()[-3000:]
                pytest.fail('fault peer: no %r (exit %s):\n%s' % (key, self.proc.poll(), err))
            gevent.sleep(0.02)

    def command(self, text):
        self.proc.stdin.write(text.encode() + b'\n')
        self.proc.stdin.flush()

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGCONT)
            except ProcessLookupError:   # pragma: no cover
                pass
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:   # pragma: no cover
            pass
        self.proc.stdin.close()


@pytest.fixture
def spawn():
    """spawn(*argv) -> Child, killed at teardown."""
    children = []

    def factory(*argv):
        child = Child([a.decode() if isinstance(a, bytes) else str(a) for a in argv])
        children.append(child)
        return child

    yield factory
    for child in children:
        child.kill()


def port_of(endpoint):
    return int(endpoint.rsplit(':', 1)[1])


def wait_until(predicate, timeout=20, what='condition'):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail('not within %ss: %s' % (timeout, what))
        gevent.sleep(0.02)


def failed_within(futures, bound, t0):
    """Every future fails with PeerGoneError; returns the seconds it took
    the last one, from t0."""
    for future in futures:
        with pytest.raises(PeerGoneError) as info:
            future.get(timeout=CALL_TIMEOUT)
        assert isinstance(info.value, ConnectionError)
    elapsed = time.monotonic() - t0
    assert elapsed < bound, 'detected after %.2f s (bound %.2f s)' % (elapsed, bound)
    return info.value


def apply_fault(fault, child, relay):
    if fault == 'kill':
        child.signal(signal.SIGKILL)
    elif fault == 'freeze':
        child.signal(signal.SIGSTOP)
    else:
        relay.command('block')
        relay.wait_for('blocked')
    return time.monotonic()


FAULTS = ['kill', 'freeze', 'link_down']


# --- a server that dies, freezes or is cut off --------------------------------

@pytest.mark.parametrize('fault', FAULTS)
def test_server_fault_fails_calls_in_flight_then_recovers(fault, spawn, make_client):
    user_id = unique('srv')
    server = spawn('server', user_id, json.dumps(HEARTBEAT))
    endpoint = server.wait_for('endpoint')['endpoint']
    relay = None
    if fault == 'link_down':
        relay = spawn('relay', port_of(endpoint))
        endpoint = 'tcp://127.0.0.1:%d' % relay.wait_for('port')['port']
    client = make_client(user_id, endpoint, timeout=CALL_TIMEOUT, **HEARTBEAT)
    assert client.echo(1).get(timeout=10) == 1
    calls = [client.sleep(CALL_TIMEOUT) for _ in range(3)]
    gevent.sleep(0.3)      # the calls are on the wire, the server runs them

    t0 = apply_fault(fault, server, relay)
    exc = failed_within(calls, DETECTION_BOUND, t0)
    assert user_id in str(exc) and 'lost the connection' in str(exc)
    assert client.future_pool == {}

    # a call made while the server is away waits for it (the outbox) ...
    later = client.echo(2)
    gevent.sleep(0.2)
    assert not later.ready()
    # ... and the server coming back needs nothing from the user
    if fault == 'kill':
        spawn('server', user_id, json.dumps(HEARTBEAT), port_of(server.wait_for('endpoint')
                                                                ['endpoint'])).wait_for('endpoint')
    elif fault == 'freeze':
        server.signal(signal.SIGCONT)
    else:
        relay.command('open')
    assert later.get(timeout=15) == 2
    assert client.echo(3).get(timeout=10) == 3


def test_server_calling_a_server_that_restarts(spawn, make_server):
    """A peer we connect()ed to comes back by itself: calls to it made
    while it is away wait for it, even from a Server (send_to)."""
    user_id = unique('srv')
    child = spawn('server', user_id, json.dumps(HEARTBEAT))
    endpoint = child.wait_for('endpoint')['endpoint']
    caller, _ = make_server(timeout=CALL_TIMEOUT, **HEARTBEAT)
    caller.connect(endpoint)
    assert caller.send_to(user_id).echo(1).get(timeout=10) == 1
    call = caller.send_to(user_id).sleep(CALL_TIMEOUT)
    gevent.sleep(0.3)
    t0 = apply_fault('kill', child, None)
    failed_within([call], DETECTION_BOUND, t0)
    later = caller.send_to(user_id).echo(2)
    spawn('server', user_id, json.dumps(HEARTBEAT), port_of(endpoint)).wait_for('endpoint')
    assert later.get(timeout=15) == 2


# --- a client that dies, freezes or is cut off -------------------------------

@pytest.mark.parametrize('fault', FAULTS)
def test_client_fault_server_forgets_it(fault, spawn, make_server):
    server, endpoint = make_server(security_plugin='trusted_peer', timeout=CALL_TIMEOUT,
                                   **HEARTBEAT)
    server.register_rpc(name='ping')(lambda: 'pong')
    relay = None
    if fault == 'link_down':
        relay = spawn('relay', port_of(endpoint))
        endpoint = 'tcp://127.0.0.1:%d' % relay.wait_for('port')['port']
    options = dict(HEARTBEAT, security_plugin='trusted_peer', user_id='alice',
                   password='alice')
    client = spawn('client', server.user_id, endpoint, json.dumps(options))
    client.wait_for('ready')
    routing_ids = server.auth_backend.routing_ids
    assert b'alice' in routing_ids
    assert server.send_to('alice').echo(7).get(timeout=10) == 7
    calls = [server.send_to('alice').sleep(CALL_TIMEOUT) for _ in range(2)]
    gevent.sleep(0.3)

    t0 = apply_fault(fault, client, relay)
    exc = failed_within(calls, DETECTION_BOUND, t0)
    assert 'lost the connection' in str(exc)
    # the routing id and what the login proved are gone
    assert b'alice' not in routing_ids
    # send_to() that user fails at once, with no future to wait on
    with pytest.raises(PeerGoneError):
        server.send_to('alice').echo(8)

    # the client back (a new process after a kill) is served and reachable
    if fault == 'kill':
        spawn('client', server.user_id, endpoint, json.dumps(options)).wait_for('ready')
    elif fault == 'freeze':
        client.signal(signal.SIGCONT)
    else:
        relay.command('open')
    wait_until(lambda: b'alice' in routing_ids, what='the client logs in again')
    assert server.send_to('alice').echo(9).get(timeout=10) == 9


def test_heartbeat_options_reach_the_socket(make_server, make_client):
    server, endpoint = make_server(heartbeat_plugin='heartbeat')
    assert server.socket.heartbeat_ivl == 1000          # the default: 1 s
    assert server.socket.heartbeat_timeout == 1250     # the interval and 0.25 s
    assert server.socket.heartbeat_ttl == 2200         # deciseconds on the wire
    client = make_client(server.user_id, endpoint, heartbeat_plugin='heartbeat',
                         heartbeat_interval=0.25)
    assert client.socket.heartbeat_ivl == 250
    with pytest.raises(ValueError, match='heartbeat_interval'):
        pseud.Client('x', heartbeat_plugin='heartbeat', heartbeat_interval=0)


def test_calls_survive_many_heartbeat_intervals(make_server, make_client):
    server, endpoint = make_server(heartbeat_plugin='heartbeat', heartbeat_interval=0.1)
    server.register_rpc(name='echo')(lambda x: x)
    client = make_client(server.user_id, endpoint, heartbeat_plugin='heartbeat',
                         heartbeat_interval=0.1)
    for i in range(10):     # 1 s: ten intervals, nothing lost
        assert client.echo(i).get(timeout=5) == i
        gevent.sleep(0.1)


# --- oversized messages -------------------------------------------------------

@pytest.fixture
def small_pair(make_server, make_client):
    """Server and client with max_message_size 1 MiB; the server serves
    `sized(n)` (n bytes) and `slow(i)` (i after 0.3 s)."""
    server, endpoint = make_server(max_message_size=MIB)
    server.register_rpc(name='sized')(lambda n: b'x' * n)

    @server.register_rpc(name='slow')
    def slow(i):
        gevent.sleep(0.3)
        return i
    client = make_client(server.user_id, endpoint, max_message_size=MIB, timeout=10)
    return server, client


def test_oversized_reply_fails_that_call_only(small_pair, caplog):
    server, client = small_pair
    others = [client.slow(i) for i in range(5)]
    with caplog.at_level(logging.WARNING, logger='pseud'):
        big = client.sized(2 * MIB)
        with pytest.raises(MessageTooLargeError) as info:
            big.get(timeout=5)
    text = str(info.value)
    size = int(re.search(r'the reply is (\d+) bytes', text).group(1))
    assert size > 2 * MIB and '(%d bytes)' % MIB in text and 'max_message_size' in text
    assert [f.get(timeout=5) for f in others] == list(range(5))
    assert client.sized(10).get(timeout=5) == b'x' * 10
    assert 'over max_message_size' in caplog.text


def test_oversized_argument_fails_on_the_sender_at_once(small_pair):
    server, client = small_pair
    others = [client.slow(i) for i in range(5)]
    with pytest.raises(MessageTooLargeError) as info:
        client.echo(b'x' * (2 * MIB))
    text = str(info.value)
    assert 'echo' in text and str(MIB) in text and 'max_message_size' in text
    assert isinstance(info.value, ValueError)
    assert [f.get(timeout=5) for f in others] == list(range(5))
    assert client.sized(10).get(timeout=5) == b'x' * 10
    assert len(client.future_pool) == 0


def test_raw_peer_sending_oversized_frame_is_named_in_a_warning(make_server, caplog):
    server, endpoint = make_server(max_message_size=MIB)
    server.register_rpc(name='echo')(lambda x: x)
    ctx = pseud._pseud.Context.instance()
    raw = ctx.socket(pseud._pseud.DEALER)
    raw.linger = 0
    raw.routing_id = b'rawpeer'
    raw.connect(endpoint)
    try:
        with caplog.at_level(logging.WARNING, logger='pseud'):
            # a valid call first: the server knows who it is
            raw.send_multipart([b'', b'v1', b'u1', b'\x03',
                                pseud.packer.Packer().packb(('echo', (1,), {}))])
            with gevent.Timeout(10):
                reply = raw.recv_multipart()
            assert reply[-2] == b'\x01'
            raw.send_multipart([b'', b'v1', b'u2', b'\x03', b'x' * (2 * MIB)])
            wait_until(lambda: 'rawpeer' in caplog.text, timeout=10,
                       what='a warning naming the peer')
        assert 'max_message_size' in caplog.text
    finally:
        raw.close()


def test_client_reconnects_after_a_protocol_error(make_client, caplog):
    """A raw server answers the first call with a frame over the client's
    limit: the client's libzmq closes the connection and would never retry;
    pseud connects again (one warning naming the endpoint) and the next
    call is answered."""
    ctx = pseud._pseud.Context.instance()
    raw = ctx.socket(pseud._pseud.ROUTER)
    raw.linger = 0
    raw.routing_id = b'rawsrv'
    raw.bind('tcp://127.0.0.1:*')
    endpoint = raw.last_endpoint.decode()
    client = make_client('rawsrv', endpoint, max_message_size=MIB, timeout=20)
    packer = pseud.packer.Packer()

    def serve(reply_body):
        with gevent.Timeout(10):
            while True:
                frames = raw.recv_multipart()
                if len(frames) == 6:     # not the probe
                    break
        raw.send_multipart([frames[0], b'', b'v1', frames[3], b'\x01', reply_body])

    try:
        with caplog.at_level(logging.WARNING, logger='pseud'):
            first = client.anything()
            serve(b'x' * (2 * MIB))
            with pytest.raises(PeerGoneError):
                first.get(timeout=10)
            second = client.anything()
            serve(packer.packb('fine'))
            assert second.get(timeout=10) == 'fine'
        warnings = [r for r in caplog.records if 'protocol error' in r.getMessage()]
        assert len(warnings) == 1 and endpoint in warnings[0].getMessage()
    finally:
        raw.close()
