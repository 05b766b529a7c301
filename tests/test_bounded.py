"""What a hostile or absent peer may cost (docs/protocol.rst, hostile input):
a bounded number of log lines, and nothing while calls wait for a server
that is not up.

The raw peer is a `zmq.green` socket (a blocking pyzmq call would freeze
the hub the server runs on); pyzmq bundles its own libzmq, so it talks to
ours over tcp.
"""
import logging
import math
import re
import time

import gevent
import gevent.event
import msgpack
import pytest
import zmq.green as zmq

pytestmark = pytest.mark.timeout(60)

V1 = b'v1'
WAIT = 5.0
# log_limit.c: LOG_BURST lines a window, a window is a second
BURST = 5

SUMMARY = re.compile(r'suppressed (\d+) more lines about malformed messages')
DROPPED_SUMMARY = re.compile(r'suppressed (\d+) more lines about dropped replies')


class Lines(logging.Handler):
    """The 'pseud' logger's records, from now on."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())

    def malformed(self):
        """(individual lines, summary lines, count the summaries give)."""
        single = [m for m in self.messages if 'dropped a malformed message' in m]
        counts = [int(SUMMARY.search(m).group(1)) for m in self.messages if SUMMARY.search(m)]
        return len(single), len(counts), sum(counts)


@pytest.fixture
def pseud_lines():
    logger = logging.getLogger('pseud')
    lines = Lines()
    old_level = logger.level
    logger.addHandler(lines)
    logger.setLevel(logging.WARNING)
    yield lines
    logger.removeHandler(lines)
    logger.setLevel(old_level)


def wait_for(predicate, seconds=WAIT):
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        gevent.sleep(0.02)
    return True


def test_a_flood_of_malformed_messages_logs_a_bounded_number_of_lines(
        make_server, make_client, pseud_lines):
    server, endpoint = make_server()

    @server.register_rpc(name='ping')
    def ping(n):
        return n

    # the limits are per process: let what earlier tests left be summed up
    # and written before counting (a window is a second)
    gevent.sleep(1.2)
    pseud_lines.messages.clear()

    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    client = make_client(server.user_id, endpoint)
    try:
        n = 5000
        started = time.monotonic()

        def flood():
            for i in range(n):
                # three frames at the server: routing id, '', 'v1'
                sock.send_multipart([b'', V1])
                if i % 100 == 0:
                    gevent.sleep(0)

        flooder = gevent.spawn(flood)
        # good calls are answered while the flood goes on
        answered = []
        while not flooder.ready():
            answered.append(client.ping(len(answered)).get(timeout=WAIT))
        flooder.get(timeout=30)
        assert answered == list(range(len(answered)))
        assert len(answered) >= 1

        # every malformed message is accounted for, once: written or summed up
        def accounted():
            single, _, suppressed = pseud_lines.malformed()
            return single + suppressed >= n
        assert wait_for(accounted, 10), pseud_lines.malformed()
        elapsed = time.monotonic() - started
        single, summaries, suppressed = pseud_lines.malformed()
        assert single + suppressed == n
        assert summaries >= 1
        assert suppressed >= n - BURST * (summaries + 1)
        # a burst, then at most one line a second (a burst again only after
        # a quiet second), whatever the load: nowhere near one per message
        windows = math.ceil(elapsed) + 1
        assert single + summaries <= BURST + (BURST + 1) * windows < n / 10

        # once quiet for a window (after the summary's own), a line is
        # written again
        gevent.sleep(2.2)
        before = pseud_lines.malformed()[0]
        sock.send_multipart([b'', V1])
        assert wait_for(lambda: pseud_lines.malformed()[0] == before + 1), pseud_lines.messages[-3:]
        assert client.ping(-1).get(timeout=WAIT) == -1
    finally:
        sock.close(linger=0)


def test_replies_dropped_for_a_peer_that_left_log_a_bounded_number_of_lines(
        make_server, pseud_lines):
    server, endpoint = make_server()
    release = gevent.event.Event()

    started = []

    @server.register_rpc(name='slow')
    def slow():
        started.append(1)
        release.wait()
        return 'late'

    gevent.sleep(1.2)       # see above: earlier tests' counts written first
    pseud_lines.messages.clear()
    n = 300
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    body = msgpack.packb(('slow', [], {}))
    for i in range(n):
        sock.send_multipart([b'', V1, b'%016d' % i, b'\x03', body])
    # every call runs (none answered yet), then the peer leaves: the
    # replies have nowhere to go
    assert wait_for(lambda: len(started) == n), len(started)
    sock.close(linger=0)
    gevent.sleep(0.5)       # the server sees the connection go
    release.set()

    def dropped():
        single = [m for m in pseud_lines.messages if 'dropped' in m and 'reply to' in m]
        counts = [int(m.group(1)) for m in map(DROPPED_SUMMARY.search, pseud_lines.messages) if m]
        return len(single), len(counts), sum(counts)
    assert wait_for(lambda: sum(dropped()[::2]) >= n, 10), dropped()
    single, summaries, suppressed = dropped()
    assert single + suppressed == n
    assert single <= BURST and summaries >= 1


# ------------------------------------------------ calls waiting for a server

def cpu_per_second(seconds):
    """CPU time this process spends per second of wall time, all threads
    (libzmq's included), while the hub runs for `seconds`."""
    wall, cpu = time.monotonic(), time.process_time()
    gevent.sleep(seconds)
    return (time.process_time() - cpu) / (time.monotonic() - wall)


def test_calls_waiting_for_a_server_cost_nothing_then_go_out_in_order(
        make_server, make_client, tmp_path):
    endpoint = 'ipc://%s' % (tmp_path / 'late.sock')
    server_id = b'late-server'
    n = 20000
    client = make_client(server_id, endpoint, timeout=10)
    calls = [client.record(i) for i in range(n)]
    assert client.pending_sends == n
    gevent.sleep(0.2)       # past the first, fast retries
    # only the head of the peer's queue is tried, with a backoff: idle
    # (the old outbox retried every call every 50 ms: 0.07 CPU-s/s here,
    # 0.25-0.44 for 100,000 calls)
    cost = cpu_per_second(1.5)
    assert cost < 0.05, 'waiting calls cost %.3f CPU-s/s' % cost
    assert not any(c.ready() for c in calls)

    seen = []
    server, _ = make_server(user_id=server_id, endpoint=endpoint)

    @server.register_rpc(name='record')
    def record(i):
        seen.append(i)
        return i

    # every call reaches the server, in the order it was made
    assert wait_for(lambda: len(seen) == n, seconds=20), len(seen)
    assert seen == list(range(n))
    assert wait_for(lambda: client.pending_sends == 0)
    # and is answered, unless the server dropped the reply: it holds 1000
    # replies at most for a peer that reads slower than they come (here
    # the client shares the hub with the server), and that call then
    # fails at its timeout
    gevent.wait(calls, timeout=20)
    for i, c in enumerate(calls):
        assert c.ready()
        if c.successful():
            assert c.value == i
        else:
            assert isinstance(c.exception, gevent.Timeout), c.exception


def test_calls_waiting_for_a_server_that_never_comes_time_out_and_leave(
        make_client, tmp_path):
    client = make_client(b'absent', 'ipc://%s' % (tmp_path / 'absent.sock'), timeout=0.5)
    calls = [client.anything(i) for i in range(2000)]
    assert client.pending_sends == 2000
    gevent.wait(calls, timeout=WAIT)
    # each failed at its own timeout (0.5 s), not at the wait's
    assert all(c.ready() and isinstance(c.exception, gevent.Timeout) for c in calls)
    assert wait_for(lambda: client.pending_sends == 0, seconds=2)
