"""Wire protocol v1 against raw pyzmq peers (docs/guide/calls.rst,
docs/guide/errors.rst, docs/protocol.rst).

Every raw socket here is a `zmq.green` socket: a blocking pyzmq call would
freeze the gevent hub the pseud reader runs on. Receives always go through
`recv_frames`, which polls with a timeout first, so a missing reply fails
the test instead of hanging it. pyzmq bundles its own libzmq, so the raw
peers talk to ours over tcp (or ipc), never inproc.
"""
import inspect
import os
import pickle

import gevent
import msgpack
import pytest
import zmq.green as zmq

from pseud.interfaces import ServiceNotFoundError

from naming import unique

pytestmark = pytest.mark.timeout(20)

V1 = b'v1'
OK = b'\x01'
HELLO = b'\x02'
WORK = b'\x03'
AUTHENTICATED = b'\x04'
HEARTBEAT = b'\x06'
ERROR = b'\x10'
UNAUTHORIZED = b'\x11'

WAIT = 3.0   # seconds to wait for a reply that must come


# ------------------------------------------------------------------ helpers

@pytest.fixture
def raw(request):
    """raw(kind, **sockopts) -> a zmq.green socket, closed (linger 0) at teardown."""
    ctx = zmq.Context.instance()
    made = []

    def factory(kind, **opts):
        sock = ctx.socket(kind)
        made.append(sock)
        sock.setsockopt(zmq.LINGER, 0)
        for name, value in opts.items():
            sock.setsockopt(getattr(zmq, name), value)
        return sock

    yield factory
    for sock in made:
        sock.close(linger=0)


def recv_frames(sock, timeout=WAIT):
    """The next multipart message, or an AssertionError after `timeout`."""
    if not sock.poll(int(timeout * 1000)):
        raise AssertionError('no message within %.1f s' % timeout)
    return sock.recv_multipart(zmq.NOBLOCK)


def silent(sock, timeout=0.3):
    """True when nothing arrives within `timeout`."""
    return not sock.poll(int(timeout * 1000))


def new_uuid():
    return os.urandom(16)


def work_body(name, args=(), kwargs=None):
    return msgpack.packb((name, list(args), kwargs or {}), use_bin_type=True)


def unpack(body):
    return msgpack.unpackb(body, raw=False, strict_map_key=False)


def dealer_to(raw, endpoint):
    """A raw DEALER connected to a server: it sends [b'', v1, uuid, type, body]
    and receives the same five frames (no routing frame)."""
    sock = raw(zmq.DEALER)
    sock.connect(endpoint)
    return sock


def dealer_call(sock, name, args=(), kwargs=None, timeout=WAIT):
    """One WORK over a raw DEALER; returns (type, unpacked body) of the reply,
    after checking the reply's frames. The reply must be the next message."""
    uid = new_uuid()
    sock.send_multipart([b'', V1, uid, WORK, work_body(name, args, kwargs)])
    frames = recv_frames(sock, timeout)
    assert len(frames) == 5, frames
    assert frames[0] == b''
    assert frames[1] == V1
    assert frames[2] == uid
    assert frames[3] in (OK, ERROR)
    return frames[3], unpack(frames[4])


def serve_ping(server):
    @server.register_rpc(name='ping')
    def ping(*args, **kwargs):
        return ['pong', list(args), kwargs]


def assert_still_serving(server, endpoint, make_client, sock=None, raw=None):
    """The server answers a good call over `sock` (or a fresh raw DEALER)
    and a pseud Client call."""
    if sock is None:
        sock = dealer_to(raw, endpoint)
    kind, value = dealer_call(sock, 'ping', (1,), {'k': 'v'})
    assert kind == OK, value
    assert value == ['pong', [1], {'k': 'v'}]
    client = make_client(server.user_id, endpoint)
    assert client.ping(2).get(timeout=WAIT) == ('pong', (2,), {})


def router_send(sock, frames, timeout=WAIT):
    """Send on a ROUTER_MANDATORY raw socket, retrying while the peer is not
    connected yet (EHOSTUNREACH)."""
    with gevent.Timeout(timeout, AssertionError('peer %r never became reachable' % frames[0])):
        while True:
            try:
                sock.send_multipart(frames, zmq.NOBLOCK)
                return
            except zmq.ZMQError as exc:
                if exc.errno not in (zmq.EHOSTUNREACH, zmq.EAGAIN):
                    raise
            gevent.sleep(0.01)


class Evil:
    """Unpickling this runs os.system(command)."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


# ------------------------------------------ 1. raw client -> pseud Server

def test_raw_router_client_reply_frames(make_server, raw):
    server, endpoint = make_server()
    server.register_rpc(name='add')(lambda a, b: a + b)
    sock = raw(zmq.ROUTER, ROUTER_MANDATORY=1)
    sock.connect(endpoint)
    uid = new_uuid()
    router_send(sock, [server.user_id, b'', V1, uid, WORK, work_body('add', (2, 3))])
    frames = recv_frames(sock)
    # our ROUTER prepended the server's routing id; the server's ROUTER
    # consumed ours and kept the rest of the envelope
    assert frames == [server.user_id, b'', V1, uid, OK, msgpack.packb(5)]
    assert msgpack.unpackb(frames[5]) == 5


def test_raw_dealer_client_ok_with_kwargs(make_server, raw):
    server, endpoint = make_server()

    @server.register_rpc(name='fmt')
    def fmt(a, b=0, *, c='x'):
        return {'a': a, 'b': b, 'c': c}

    sock = dealer_to(raw, endpoint)
    uid = new_uuid()
    sock.send_multipart([b'', V1, uid, WORK,
                         msgpack.packb(('fmt', (1,), {'c': 'see', 'b': 2}))])
    frames = recv_frames(sock)
    assert len(frames) == 5
    assert frames[:4] == [b'', V1, uid, OK]
    assert unpack(frames[4]) == {'a': 1, 'b': 2, 'c': 'see'}


def test_raw_client_many_calls_matched_by_uuid(make_server, raw):
    server, endpoint = make_server()

    @server.register_rpc(name='slow_echo')
    def slow_echo(x, delay):
        gevent.sleep(delay)
        return x

    sock = dealer_to(raw, endpoint)
    sent = {}
    for i in range(20):
        uid = new_uuid()
        sent[uid] = i
        # later calls finish first: replies come back out of order
        sock.send_multipart([b'', V1, uid, WORK, work_body('slow_echo', (i, (20 - i) * 0.005))])
    got = {}
    for _ in range(20):
        frames = recv_frames(sock)
        assert frames[:2] == [b'', V1] and frames[3] == OK
        got[frames[2]] = unpack(frames[4])
    assert got == sent


def test_raw_client_error_reply(make_server, raw):
    server, endpoint = make_server()

    def explode(x):
        raise KeyError('no such key %s' % x)

    server.register_rpc(name='explode')(explode)
    line = inspect.getsourcelines(explode)[1] + 1   # the raise statement
    sock = dealer_to(raw, endpoint)
    uid = new_uuid()
    sock.send_multipart([b'', V1, uid, WORK, work_body('explode', ('k',))])
    frames = recv_frames(sock)
    assert frames[:4] == [b'', V1, uid, ERROR]
    body = unpack(frames[4])
    assert isinstance(body, list) and len(body) == 3
    cls, message, tb = body
    assert cls == 'KeyError'
    assert message == str(KeyError('no such key k'))
    assert isinstance(tb, str)
    assert 'Traceback' in tb
    assert '"%s", line %d, in explode' % (__file__, line) in tb
    assert "raise KeyError('no such key %s' % x)" in tb
    # and it keeps serving
    serve_ping(server)
    kind, value = dealer_call(sock, 'ping')
    assert kind == OK


def test_raw_client_unknown_name(make_server, raw):
    server, endpoint = make_server()
    name = unique('missing')
    sock = dealer_to(raw, endpoint)
    uid = new_uuid()
    sock.send_multipart([b'', V1, uid, WORK, work_body(name)])
    frames = recv_frames(sock)
    assert frames[:4] == [b'', V1, uid, ERROR]
    cls, message, tb = unpack(frames[4])
    assert cls == 'ServiceNotFoundError'
    assert message == name
    assert isinstance(tb, str)


def test_raw_client_over_ipc(make_server, raw, tmp_path):
    server, endpoint = make_server(endpoint='ipc://%s' % (tmp_path / 'srv.sock'))
    serve_ping(server)
    sock = dealer_to(raw, endpoint)
    assert dealer_call(sock, 'ping', ('a',)) == (OK, ['pong', ['a'], {}])


def test_raw_client_empty_uuid_is_echoed(make_server, raw, make_client):
    # uuid b'' is legal on the wire (heartbeats use it); the reply carries it back
    server, endpoint = make_server()
    serve_ping(server)
    sock = dealer_to(raw, endpoint)
    sock.send_multipart([b'', V1, b'', WORK, work_body('ping')])
    frames = recv_frames(sock)
    assert frames[:4] == [b'', V1, b'', OK]
    assert unpack(frames[4]) == ['pong', [], {}]
    assert_still_serving(server, endpoint, make_client, sock)


# ----------------------------------------- 2. pseud Client -> raw server

@pytest.fixture
def raw_server(raw):
    """A raw ROUTER server: returns (sock, endpoint, routing id)."""
    rid = unique('rawsrv').encode()
    sock = raw(zmq.ROUTER, ROUTING_ID=rid, ROUTER_MANDATORY=1)
    port = sock.bind_to_random_port('tcp://127.0.0.1')
    return sock, 'tcp://127.0.0.1:%d' % port, rid


def recv_work(sock, timeout=WAIT):
    """The next six-frame message on a raw server, skipping connect probes."""
    while True:
        frames = recv_frames(sock, timeout)
        if len(frames) == 2 and frames[1] == b'':
            continue
        return frames


def test_client_work_frames(make_client, raw_server):
    sock, endpoint, rid = raw_server
    client = make_client(rid, endpoint)
    future = client.foo(1, k=2)
    frames = recv_work(sock)
    assert len(frames) == 6, frames
    client_rid, delim, version, uid, kind, body = frames
    assert client_rid  # the client's routing id, chosen by ZeroMQ
    assert delim == b''
    assert version == V1
    assert len(uid) == 16
    assert kind == WORK
    assert msgpack.unpackb(body, strict_map_key=False) == ['foo', [1], {'k': 2}]
    assert msgpack.unpackb(body, use_list=False, strict_map_key=False) == ('foo', (1,), {'k': 2})
    assert uid in client.future_pool
    router_send(sock, [client_rid, b'', V1, uid, OK, msgpack.packb({'x': [1, 2]})])
    assert future.get(timeout=WAIT) == {'x': (1, 2)}
    assert client.future_pool == {}


def test_client_sends_only_v1_messages_by_default(make_client, raw_server):
    # a gevent-era upstream server logs a traceback for the probe
    # [routing id, b''] (docs/guide/calls.rst, probe_router): none by default
    sock, endpoint, rid = raw_server
    client = make_client(rid, endpoint)
    client.ping()
    first = recv_frames(sock)
    assert len(first) == 6 and first[4] == WORK, first


def test_client_probe_router_option_sends_probe_first(make_client, raw_server):
    sock, endpoint, rid = raw_server
    client = make_client(rid, endpoint, probe_router=True)
    # once the client runs, the probe arrives before any call: the server
    # learns our routing id (libzmq sends it as the socket handles the
    # new connection, which it does when its owner touches it)
    client.start()
    first = recv_frames(sock)
    assert len(first) == 2 and first[1] == b''
    client.ping()
    work = recv_frames(sock)
    assert len(work) == 6 and work[0] == first[0]


def test_client_dotted_name_and_no_kwargs(make_client, raw_server):
    sock, endpoint, rid = raw_server
    client = make_client(rid, endpoint)
    client.a.b.c('s', b'b', 1.5, None, True)
    frames = recv_work(sock)
    assert frames[4] == WORK
    assert unpack(frames[5]) == ['a.b.c', ['s', b'b', 1.5, None, True], {}]


def _call_and_reply(client, sock, kind, body):
    """Make a call, answer it with [kind, body]; return the future."""
    future = client.foo()
    frames = recv_work(sock)
    router_send(sock, [frames[0], b'', V1, frames[3], kind, body])
    return future


def test_client_error_reply_rebuilds_builtin(make_client, raw_server):
    sock, endpoint, rid = raw_server
    client = make_client(rid, endpoint)
    tb = 'Traceback (most recent call last):\n  File "remote.py", line 42, in foo\nValueError: msg'
    future = _call_and_reply(client, sock, ERROR, msgpack.packb(('ValueError', 'msg', tb)))
    with pytest.raises(ValueError) as info:
        future.get(timeout=WAIT)
    assert type(info.value) is ValueError
    text = str(info.value)
    assert 'msg' in text
    assert 'File "remote.py", line 42, in foo' in text
    assert 'Beginning of remote traceback' in text
    assert client.future_pool == {}


def test_client_error_reply_rebuilds_pseud_exception(make_client, raw_server):
    sock, endpoint, rid = raw_server
    client = make_client(rid, endpoint)
    future = _call_and_reply(client, sock, ERROR,
                             msgpack.packb(('ServiceNotFoundError', 'foo', '')))
    with pytest.raises(ServiceNotFoundError) as info:
        future.get(timeout=WAIT)
    assert 'foo' in str(info.value)


@pytest.mark.parametrize('klass', ['KeyboardInterrupt', 'SystemExit', 'exec', 'open',
                                   'input', 'GeneratorExit', 'NoSuchThing', 'BaseException',
                                   'eval', '__import__', 'print', 'object', 'type', ''])
def test_client_error_reply_hostile_class_name(make_client, raw_server, klass):
    sock, endpoint, rid = raw_server
    client = make_client(rid, endpoint)
    future = _call_and_reply(client, sock, ERROR,
                             msgpack.packb((klass, 'print(1)', 'remote tb')))
    with pytest.raises(BaseException) as info:
        future.get(timeout=WAIT)
    assert type(info.value) is Exception
    assert str(info.value).startswith(klass)
    assert 'print(1)' in str(info.value)
    # still works afterwards
    future = _call_and_reply(client, sock, OK, msgpack.packb('fine'))
    assert future.get(timeout=WAIT) == 'fine'


@pytest.mark.parametrize('body', [
    b'\xc1garbage',
    b'\x93\xa3abc',                             # truncated array
    msgpack.packb(['ValueError', 'msg']),          # list of 2
    msgpack.packb(['ValueError', 'msg', 'tb', 'x']),
    msgpack.packb([1, 2, 3]),                      # ints instead of strings
    msgpack.packb(['ValueError', 7, 'tb']),
    msgpack.packb('ValueError'),
    msgpack.packb(None),
    msgpack.packb({'a': 1}),
    b'',
    b'\xdd\xff\xff\xff\xff',
    b'\x91' * 100000,
], ids=['reserved', 'truncated', 'two', 'four', 'ints', 'int-msg', 'str', 'nil',
        'map', 'empty', 'array-bomb', 'deep'])
def test_client_malformed_error_body(make_client, raw_server, body):
    sock, endpoint, rid = raw_server
    client = make_client(rid, endpoint, timeout=10)
    future = _call_and_reply(client, sock, ERROR, body)
    with gevent.Timeout(WAIT, AssertionError('call left hanging')):
        with pytest.raises(Exception) as info:
            future.get()
    assert isinstance(info.value, Exception)
    assert not isinstance(info.value, gevent.Timeout)
    assert client.future_pool == {}
    future = _call_and_reply(client, sock, OK, msgpack.packb(1))
    assert future.get(timeout=WAIT) == 1


def test_client_error_traceback_not_a_string(make_client, raw_server):
    sock, endpoint, rid = raw_server
    client = make_client(rid, endpoint)
    future = _call_and_reply(client, sock, ERROR, msgpack.packb(('KeyError', 'm', 12345)))
    with pytest.raises(KeyError) as info:
        future.get(timeout=WAIT)
    assert '12345' in str(info.value)


@pytest.mark.parametrize('body', [
    b'\xc1', b'\x92\x01', b'', b'\x01\x02', b'\xdb\xff\xff\xff\xff', b'\x91' * 100000,
], ids=['reserved', 'truncated', 'empty', 'trailing', 'str-bomb', 'deep'])
def test_client_garbage_ok_body(make_client, raw_server, body):
    sock, endpoint, rid = raw_server
    client = make_client(rid, endpoint, timeout=10)
    future = _call_and_reply(client, sock, OK, body)
    with gevent.Timeout(WAIT, AssertionError('call left hanging')):
        with pytest.raises(ValueError) as info:
            future.get()
    # the RPC's own decoding: pseud's ValueError, msgpack plays no part
    assert not isinstance(info.value, msgpack.ExtraData)
    assert client.future_pool == {}
    future = _call_and_reply(client, sock, OK, msgpack.packb('next'))
    assert future.get(timeout=WAIT) == 'next'


def test_client_ok_body_evil_pickle(make_client, raw_server, tmp_path):
    marker = tmp_path / 'pwned_client'
    sock, endpoint, rid = raw_server
    client = make_client(rid, endpoint)
    evil = msgpack.packb(msgpack.ExtType(125, pickle.dumps(Evil('touch %s' % marker))))
    future = _call_and_reply(client, sock, OK, evil)
    with pytest.raises(ValueError):
        future.get(timeout=WAIT)
    assert not marker.exists()


def test_client_ignores_unknown_uuid(make_client, raw_server):
    sock, endpoint, rid = raw_server
    client = make_client(rid, endpoint)
    future = client.foo()
    frames = recv_work(sock)
    peer, uid = frames[0], frames[3]
    for bogus in (new_uuid(), b'', b'x' * 64):
        router_send(sock, [peer, b'', V1, bogus, OK, msgpack.packb('wrong')])
        router_send(sock, [peer, b'', V1, bogus, ERROR, msgpack.packb(('ValueError', 'x', ''))])
    gevent.sleep(0.1)
    assert not future.ready()
    assert list(client.future_pool) == [uid]
    router_send(sock, [peer, b'', V1, uid, OK, msgpack.packb('right')])
    assert future.get(timeout=WAIT) == 'right'


def test_client_ignores_second_reply(make_client, raw_server):
    sock, endpoint, rid = raw_server
    client = make_client(rid, endpoint)
    future = client.foo()
    frames = recv_work(sock)
    peer, uid = frames[0], frames[3]
    router_send(sock, [peer, b'', V1, uid, OK, msgpack.packb('first')])
    assert future.get(timeout=WAIT) == 'first'
    router_send(sock, [peer, b'', V1, uid, OK, msgpack.packb('second')])
    router_send(sock, [peer, b'', V1, uid, ERROR, msgpack.packb(('ValueError', 'late', ''))])
    # a fresh call after the duplicates is answered normally
    future2 = _call_and_reply(client, sock, OK, msgpack.packb('again'))
    assert future2.get(timeout=WAIT) == 'again'
    assert future.get() == 'first'
    assert future.successful()
    assert client.future_pool == {}


def test_client_survives_malformed_messages(make_client, raw_server):
    """Malformed messages from the server side are dropped by the client."""
    sock, endpoint, rid = raw_server
    client = make_client(rid, endpoint)
    future = client.foo()
    frames = recv_work(sock)
    peer, uid = frames[0], frames[3]
    for bad in ([peer, b'x'], [peer, b'', V1], [peer, b'', b'v2', uid, OK, b'\x01'],
                [peer, b'', V1, uid, b'', b'\x01'], [peer, b'', V1, uid, OK + OK, b'\x01'],
                [peer, b'', V1, uid, OK, b'\x01', b'extra'],
                [peer, b'', V1, uid, b'\x7f', b'\x01'],
                [peer, b'', V1, uid, WORK, b'\xc1']):
        router_send(sock, bad)
    # an unknown type byte and bad WORK get an ERROR back; nothing else does
    replies = []
    while not silent(sock, 0.3):
        replies.append(sock.recv_multipart(zmq.NOBLOCK))
    assert all(r[4] == ERROR for r in replies), replies
    assert not future.ready()
    router_send(sock, [peer, b'', V1, uid, OK, msgpack.packb('ok')])
    assert future.get(timeout=WAIT) == 'ok'


# -------------------------------- 3. malformed messages to a pseud Server

@pytest.fixture
def served(make_server, raw):
    """(server with 'ping', endpoint, raw DEALER connected to it)."""
    server, endpoint = make_server()
    serve_ping(server)
    sock = dealer_to(raw, endpoint)
    # make sure the connection is up before sending garbage
    assert dealer_call(sock, 'ping')[0] == OK
    return server, endpoint, sock


_U = b'0123456789abcdef'
_GOOD = work_body('ping')

# Frames as a DEALER sends them; the server sees its own ROUTER's routing-id
# frame in front, so 'frames-N' is the count the server receives. A ROUTER
# never delivers a one-frame message (the routing frame is always there; a
# lone routing frame sent by a raw ROUTER is dropped by libzmq), so the
# smallest case that reaches our code is two frames.
DROPPED = {
    'frames-2-nonempty': [b'x'],
    'frames-3': [b'', V1],
    'frames-5': [b'', V1, _U, WORK],
    'frames-7': [b'', V1, _U, WORK, _GOOD, b'extra'],
    'frames-20': [b'', V1, _U, WORK, _GOOD] + [b'x'] * 14,
    'frames-6-delim-not-empty': [b'x', V1, _U, WORK, _GOOD],
    'version-v2': [b'', b'v2', _U, WORK, _GOOD],
    'version-empty': [b'', b'', _U, WORK, _GOOD],
    'version-long': [b'', b'v1\x00', _U, WORK, _GOOD],
    'type-empty': [b'', V1, _U, b'', _GOOD],
    'type-two-bytes': [b'', V1, _U, WORK + WORK, _GOOD],
    'uuid-100': [b'', V1, b'u' * 100, WORK, _GOOD],
    'uuid-65': [b'', V1, b'u' * 65, WORK, _GOOD],
}


@pytest.mark.parametrize('frames', list(DROPPED.values()), ids=list(DROPPED))
def test_server_drops_malformed_envelope(served, make_client, frames):
    server, endpoint, sock = served
    sock.send_multipart(frames)
    # the dropped message gets no reply: the next one is the good call's
    assert_still_serving(server, endpoint, make_client, sock)


def test_server_ignores_empty_message_frame(served, make_client):
    # a DEALER sending one empty frame is what the server sees as a probe
    server, endpoint, sock = served
    sock.send_multipart([b''])
    assert_still_serving(server, endpoint, make_client, sock)


def test_server_answers_unknown_type(served, make_client):
    server, endpoint, sock = served
    sock.send_multipart([b'', V1, _U, b'\x7f', b'whatever'])
    frames = recv_frames(sock)
    assert frames[:4] == [b'', V1, _U, ERROR]
    cls, message, tb = unpack(frames[4])
    assert cls == 'ValueError'
    assert 'unknown message type' in message
    assert_still_serving(server, endpoint, make_client, sock)


def test_server_answers_uuid_64(served, make_client):
    # 64 bytes is the longest message id accepted
    server, endpoint, sock = served
    uid = b'u' * 64
    sock.send_multipart([b'', V1, uid, WORK, _GOOD])
    frames = recv_frames(sock)
    assert frames[:4] == [b'', V1, uid, OK]
    assert_still_serving(server, endpoint, make_client, sock)


@pytest.mark.parametrize('kind', [HEARTBEAT, HELLO, AUTHENTICATED, UNAUTHORIZED],
                         ids=['heartbeat', 'hello', 'authenticated', 'unauthorized'])
@pytest.mark.parametrize('body', [b'', b'\xc1junk', msgpack.packb(('login', 'pw'))],
                         ids=['empty', 'junk', 'hello-body'])
def test_server_noop_ignores_control_messages(served, make_client, kind, body):
    server, endpoint, sock = served
    sock.send_multipart([b'', V1, b'', kind, body])
    sock.send_multipart([b'', V1, _U, kind, body])
    # no reply for them: the next reply is the good call's
    assert_still_serving(server, endpoint, make_client, sock)


def test_server_ignores_stray_replies(served, make_client):
    # OK/ERROR for calls the server never made are dropped
    server, endpoint, sock = served
    sock.send_multipart([b'', V1, _U, OK, msgpack.packb(1)])
    sock.send_multipart([b'', V1, _U, ERROR, msgpack.packb(('ValueError', 'x', ''))])
    sock.send_multipart([b'', V1, _U, OK, b'\xc1'])
    sock.send_multipart([b'', V1, _U, ERROR, b'\x91' * 100000])
    assert_still_serving(server, endpoint, make_client, sock)


BAD_WORK = {
    'garbage': (b'\xc1\xc1\xc1', 'ValueError'),
    'empty': (b'', 'ValueError'),
    'truncated': (work_body('ping', (1, 2, 3))[:-2], 'ValueError'),
    'trailing': (work_body('ping') + b'\x00', 'ValueError'),
    'int': (msgpack.packb(42), 'ValueError'),
    'nil': (msgpack.packb(None), 'ValueError'),
    'tuple-2': (msgpack.packb(('ping', ())), 'ValueError'),
    'tuple-4': (msgpack.packb(('ping', (), {}, 1)), 'ValueError'),
    'tuple-0': (msgpack.packb(()), 'ValueError'),
    'map': (msgpack.packb({'name': 'ping'}), 'ValueError'),
    'name-int': (msgpack.packb((7, (), {})), 'ValueError'),
    'name-bytes': (msgpack.packb((b'ping', (), {}), use_bin_type=True), 'ValueError'),
    'name-nil': (msgpack.packb((None, (), {})), 'ValueError'),
    'args-int': (msgpack.packb(('ping', 1, {})), 'ValueError'),
    'args-map': (msgpack.packb(('ping', {}, {})), 'ValueError'),
    'args-str': (msgpack.packb(('ping', 'ab', {})), 'ValueError'),
    'kwargs-list': (msgpack.packb(('ping', (), [])), 'ValueError'),
    'kwargs-int': (msgpack.packb(('ping', (), 3)), 'ValueError'),
    'kwargs-int-keys': (msgpack.packb(('ping', (), {1: 2})), 'TypeError'),
    'kwargs-bytes-keys': (msgpack.packb(('ping', (), {b'k': 2}), use_bin_type=True), 'TypeError'),
    'kwargs-tuple-key': (b'\x93\xa4ping\x90\x81\x92\x01\x02\x03', 'TypeError'),
    'kwargs-unhashable-key': (b'\x93\xa4ping\x90\x81\x91\x80\x03', 'ValueError'),
    'array-bomb': (b'\xdd\xff\xff\xff\xff', 'ValueError'),
    'map-bomb': (b'\xdf\xff\xff\xff\xff', 'ValueError'),
    'str-bomb': (b'\xdb\xff\xff\xff\xff', 'ValueError'),
    'bin-bomb': (b'\xc6\xff\xff\xff\xff', 'ValueError'),
    'ext-bomb': (b'\xc9\xff\xff\xff\xff\x05', 'ValueError'),
    'inner-bomb': (b'\x93\xa4ping\xdd\xff\xff\xff\xff', 'ValueError'),
    'deep': (b'\x91' * 100000, 'ValueError'),
    'deep-args': (b'\x93\xa4ping' + b'\x91' * 100000, 'ValueError'),
    'bad-utf8-name': (b'\x93\xa2\xff\xfe\x90\x80', 'ValueError'),
    'reserved-in-args': (b'\x93\xa4ping\x91\xc1\x80', 'ValueError'),
}


@pytest.mark.parametrize('body,cls', list(BAD_WORK.values()), ids=list(BAD_WORK))
def test_server_refuses_bad_work(served, make_client, body, cls):
    server, endpoint, sock = served
    uid = new_uuid()
    sock.send_multipart([b'', V1, uid, WORK, body])
    frames = recv_frames(sock)
    assert len(frames) == 5
    assert frames[:4] == [b'', V1, uid, ERROR]
    reply = unpack(frames[4])
    assert isinstance(reply, list) and len(reply) == 3
    assert reply[0] == cls, reply
    assert isinstance(reply[1], str) and reply[1]
    assert_still_serving(server, endpoint, make_client, sock)


def test_server_refuses_evil_pickle(served, make_client, tmp_path):
    server, endpoint, sock = served
    marker = tmp_path / 'pwned_server'
    for proto in range(0, pickle.HIGHEST_PROTOCOL + 1):
        evil = msgpack.ExtType(125, pickle.dumps(Evil('touch %s' % marker), protocol=proto))
        uid = new_uuid()
        sock.send_multipart([b'', V1, uid, WORK, msgpack.packb(('ping', (evil,), {}))])
        frames = recv_frames(sock)
        assert frames[:4] == [b'', V1, uid, ERROR]
        cls, message, tb = unpack(frames[4])
        assert cls == 'ValueError'
    gevent.sleep(0.1)
    assert not marker.exists()
    assert_still_serving(server, endpoint, make_client, sock)


def test_server_refuses_pickle_of_other_type(served, make_client):
    # ext 125 must decode to a datetime, nothing else
    server, endpoint, sock = served
    uid = new_uuid()
    other = msgpack.ExtType(125, pickle.dumps(['not', 'a', 'datetime']))
    sock.send_multipart([b'', V1, uid, WORK, msgpack.packb(('ping', (other,), {}))])
    frames = recv_frames(sock)
    assert frames[:4] == [b'', V1, uid, ERROR]
    assert unpack(frames[4])[0] == 'ValueError'
    assert_still_serving(server, endpoint, make_client, sock)


def test_server_unknown_ext_passes_through(served):
    # an ext code without a handler decodes to ExtType(code, data) and is
    # handed to the callable (here echoed back as the same ext)
    server, endpoint, sock = served
    kind, value = dealer_call(sock, 'ping', (msgpack.ExtType(5, b'abc'),))
    assert kind == OK
    assert value == ['pong', [msgpack.ExtType(5, b'abc')], {}]


def test_server_survives_garbage_burst(served, make_client):
    server, endpoint, sock = served
    dropped = list(DROPPED.values())
    refused = [[b'', V1, _U, WORK, body] for body, _ in BAD_WORK.values() if len(body) < 1000]
    bad = dropped + refused
    for i in range(2000):
        sock.send_multipart(bad[i % len(bad)])
    expected = sum(1 for i in range(2000) if i % len(bad) >= len(dropped))
    uid = new_uuid()
    sock.send_multipart([b'', V1, uid, WORK, work_body('ping', ('last',))])
    # drain the refusals until the good call's reply
    errors = 0
    with gevent.Timeout(15, AssertionError('good call not served after the burst')):
        while True:
            frames = recv_frames(sock, 10)
            if frames[2] == uid:
                break
            assert frames[2] == _U and frames[3] == ERROR
            errors += 1
    assert frames[3] == OK
    assert unpack(frames[4]) == ['pong', ['last'], {}]
    assert errors == expected
    assert_still_serving(server, endpoint, make_client, sock)


# ---------------------------------------------------- 4. max_message_size

def test_server_max_message_size(make_server, make_client, raw):
    server, endpoint = make_server(max_message_size=1024)
    serve_ping(server)
    sock = dealer_to(raw, endpoint)
    assert dealer_call(sock, 'ping')[0] == OK
    # a small message is still fine
    assert dealer_call(sock, 'ping', ('x' * 500,))[0] == OK
    big = work_body('ping', ('x' * 4096,))
    sock.send_multipart([b'', V1, new_uuid(), WORK, big])
    # libzmq drops that connection; nothing comes back
    assert silent(sock, 0.5)
    # a new connection is served, and so is a pseud client
    assert_still_serving(server, endpoint, make_client, raw=raw)


def test_server_max_message_size_many_offenders(make_server, make_client, raw):
    server, endpoint = make_server(max_message_size=2048)
    serve_ping(server)
    for _ in range(5):
        sock = dealer_to(raw, endpoint)
        sock.send_multipart([b'', V1, new_uuid(), WORK, b'\x00' * 8192])
    assert_still_serving(server, endpoint, make_client, raw=raw)


# -------------------------------------------------------------- 5. probes

def test_server_ignores_probe_router(make_server, make_client, raw):
    server, endpoint = make_server()
    serve_ping(server)
    sock = raw(zmq.ROUTER, ROUTER_MANDATORY=1, PROBE_ROUTER=1)
    sock.connect(endpoint)
    uid = new_uuid()
    router_send(sock, [server.user_id, b'', V1, uid, WORK, work_body('ping', ('p',))])
    frames = recv_frames(sock)
    # the probe got no reply of its own: the first message back is the call's
    assert frames == [server.user_id, b'', V1, uid, OK, msgpack.packb(['pong', ['p'], {}])]
    assert_still_serving(server, endpoint, make_client, raw=raw)


def test_server_ignores_explicit_probe_frames(make_server, make_client, raw):
    server, endpoint = make_server()
    serve_ping(server)
    sock = raw(zmq.ROUTER, ROUTER_MANDATORY=1)
    sock.connect(endpoint)
    for _ in range(10):
        router_send(sock, [server.user_id, b''])
    uid = new_uuid()
    router_send(sock, [server.user_id, b'', V1, uid, WORK, work_body('ping')])
    frames = recv_frames(sock)
    assert frames[3:5] == [uid, OK]
    assert_still_serving(server, endpoint, make_client, raw=raw)


# ------------------------------------------------------- further coverage

def test_large_bodies_both_ways(make_server, raw):
    # bodies past the small-body threshold are handed to libzmq, not copied
    server, endpoint = make_server()
    server.register_rpc(name='blob')(lambda n, pad: b'z' * n)
    sock = dealer_to(raw, endpoint)
    uids = {}
    for n in (10, 4095, 4096, 4097, 70000, 1 << 20):
        uid = new_uuid()
        uids[uid] = n
        sock.send_multipart([b'', V1, uid, WORK,
                             msgpack.packb(('blob', (n, b'p' * n), {}), use_bin_type=True)])
    got = {}
    for _ in uids:
        frames = recv_frames(sock, 5)
        assert frames[3] == OK
        got[frames[2]] = unpack(frames[4])
    assert got == {uid: b'z' * n for uid, n in uids.items()}


def test_client_large_work_to_raw_server(make_client, raw_server):
    sock, endpoint, rid = raw_server
    client = make_client(rid, endpoint)
    payload = b'q' * 100000
    futures = [client.big(payload, i) for i in range(3)]
    seen = []
    for _ in futures:
        frames = recv_work(sock)
        name, args, kwargs = unpack(frames[5])
        assert name == 'big' and args[0] == payload and kwargs == {}
        seen.append(args[1])
        router_send(sock, [frames[0], b'', V1, frames[3], OK, msgpack.packb(args[1])])
    assert sorted(seen) == [0, 1, 2]
    assert [f.get(timeout=WAIT) for f in futures] == [0, 1, 2]


def test_client_late_reply_after_timeout(make_client, raw_server):
    sock, endpoint, rid = raw_server
    client = make_client(rid, endpoint, timeout=0.3)
    future = client.foo()
    frames = recv_work(sock)
    with pytest.raises(gevent.Timeout):
        future.get()
    assert client.future_pool == {}
    router_send(sock, [frames[0], b'', V1, frames[3], OK, msgpack.packb('late')])
    future = _call_and_reply(client, sock, OK, msgpack.packb('on time'))
    assert future.get(timeout=WAIT) == 'on time'


def test_raw_server_calls_client(make_client, raw_server):
    # WORK travels both ways: a server may call its connected clients
    sock, endpoint, rid = raw_server
    client = make_client(rid, endpoint)
    client.register_rpc(name='whoami')(lambda: 'client')
    client.ping()   # makes the client known to the raw server
    frames = recv_work(sock)
    uid = new_uuid()
    router_send(sock, [frames[0], b'', V1, uid, WORK, work_body('whoami')])
    reply = recv_frames(sock)
    assert reply == [frames[0], b'', V1, uid, OK, msgpack.packb('client')]


def test_server_send_to_raw_client(make_server, raw):
    server, endpoint = make_server()
    rid = unique('rawcli').encode()
    sock = raw(zmq.ROUTER, ROUTING_ID=rid, ROUTER_MANDATORY=1)
    sock.connect(endpoint)
    serve_ping(server)
    # the raw client speaks first, so the connection is known both ways
    router_send(sock, [server.user_id, b'', V1, _U, WORK, work_body('ping')])
    assert recv_frames(sock)[3:5] == [_U, OK]
    future = server.send_to(rid).job(3, k='v')
    frames = recv_frames(sock)
    assert frames[:3] == [server.user_id, b'', V1]
    assert len(frames[3]) == 16 and frames[4] == WORK
    assert unpack(frames[5]) == ['job', [3], {'k': 'v'}]
    router_send(sock, [server.user_id, b'', V1, frames[3], OK, msgpack.packb('done')])
    assert future.get(timeout=WAIT) == 'done'
    assert server.future_pool == {}


def test_server_flooded_by_non_reader(make_server, make_client, raw):
    # a peer that never reads its replies must not stall other peers
    server, endpoint = make_server()
    serve_ping(server)
    flooder = raw(zmq.DEALER, RCVHWM=10, SNDHWM=0)
    flooder.connect(endpoint)
    for _ in range(5000):
        flooder.send_multipart([b'', V1, _U, WORK, _GOOD])
    gevent.sleep(0.2)
    start = gevent.get_hub().loop.now()
    assert_still_serving(server, endpoint, make_client, raw=raw)
    assert gevent.get_hub().loop.now() - start < 2


def _queued_replies(rpc):
    """How many replies the RPC holds for peers that cannot take them yet."""
    return range(rpc.pending_sends)


def test_server_outbox_bounded_for_non_reader(make_server, raw):
    server, endpoint = make_server(timeout=10)
    server.register_rpc(name='bulky')(lambda: b'x' * 20000)
    flooder = raw(zmq.DEALER, RCVHWM=1, SNDHWM=0)
    flooder.connect(endpoint)
    body = work_body('bulky')
    for _ in range(5000):
        flooder.send_multipart([b'', V1, _U, WORK, body])
    # 5000 requests of 20 bytes each; the peer reads nothing
    with gevent.Timeout(5, AssertionError('flood not processed')):
        while len(_queued_replies(server)) < 100:
            gevent.sleep(0.05)
        gevent.sleep(0.5)
    # no more than a socket's high-water mark of replies should be held for
    # one peer that does not read (libzmq itself holds SNDHWM=1000 more)
    assert len(_queued_replies(server)) <= 1000


class _StrFails(Exception):
    def __str__(self):
        raise RuntimeError('str() of this exception fails')


class _Opaque:
    pass


def _refuse_to_pack(obj):
    raise _StrFails()


def test_server_unpackable_result_with_unprintable_error(make_server, make_client, raw):
    server, endpoint = make_server(
        translation_table={42: (_Opaque, _refuse_to_pack, lambda data: _Opaque())})
    server.register_rpc(name='opaque')(lambda: _Opaque())
    serve_ping(server)
    sock = dealer_to(raw, endpoint)
    kind, reply = dealer_call(sock, 'opaque')
    assert kind == ERROR
    assert reply[0] == '_StrFails'
    assert isinstance(reply[1], str)
    assert_still_serving(server, endpoint, make_client, sock)


def test_client_error_timeouterror_is_the_builtin(make_client, raw_server):
    # docs/guide/errors.rst: the name is looked up in builtins first:
    # 'TimeoutError' from the peer becomes the builtin, not pseud.interfaces.TimeoutError
    import builtins
    sock, endpoint, rid = raw_server
    client = make_client(rid, endpoint)
    future = _call_and_reply(client, sock, ERROR, msgpack.packb(('TimeoutError', 'slow', '')))
    with pytest.raises(builtins.TimeoutError) as info:
        future.get(timeout=WAIT)
    assert type(info.value) is builtins.TimeoutError
    assert 'slow' in str(info.value)
