"""_pseud.Context / Socket / Frame: pyzmq-like sockets for plugins
(docs/guide/plugins.rst), cooperative under gevent, with no dependency on pyzmq."""
import errno
import gc
import os
import time

import gevent
import gevent.event
import pytest

from pseud import _pseud as P

from naming import unique

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def ctx():
    return P.Context.instance()


@pytest.fixture
def make(ctx, request):
    """make(kind, **options) -> a socket closed (linger 0) at teardown."""
    made = []

    def factory(kind, **options):
        sock = ctx.socket(kind)
        made.append(sock)
        for name, value in options.items():
            setattr(sock, name, value)
        return sock

    yield factory
    missed = [sock._debug_state()['missed_wakeups'] for sock in made]
    for sock in made:
        sock.close(linger=0)
    # a socket found ready by its safety timer means a ZMQ_FD edge was lost
    assert missed == [0] * len(made)


def inproc():
    return 'inproc://' + unique('sock')


def connected_pair(make, kind_a, kind_b, endpoint=None, **options):
    a = make(kind_a, linger=0, **options)
    b = make(kind_b, linger=0, **options)
    bound = a.bind(endpoint or inproc())
    b.connect(bound)
    return a, b


# ---------------------------------------------------------------- basics

def test_constants_are_libzmq_values():
    kinds = dict(PAIR=0, PUB=1, SUB=2, REQ=3, REP=4, DEALER=5, ROUTER=6,
                 PULL=7, PUSH=8, XPUB=9, XSUB=10, STREAM=11)
    for name, value in kinds.items():
        assert getattr(P, name) == value
    assert (P.DONTWAIT, P.SNDMORE, P.POLLIN, P.POLLOUT) == (1, 2, 1, 2)
    assert (P.LINGER, P.ROUTING_ID, P.IDENTITY, P.SUBSCRIBE) == (17, 5, 5, 6)
    assert (P.RCVTIMEO, P.SNDTIMEO, P.ROUTER_MANDATORY, P.MECHANISM) == (27, 28, 33, 43)
    assert (P.PLAIN_SERVER, P.CURVE_SERVER, P.ZAP_DOMAIN, P.HEARTBEAT_IVL) == (44, 47, 55, 75)
    assert (P.NULL, P.PLAIN, P.CURVE) == (0, 1, 2)


def test_context_is_process_wide(ctx):
    assert P.Context.instance() is ctx
    assert P.Context() is ctx
    assert isinstance(ctx.underlying, int) and ctx.underlying != 0
    assert ctx.closed is False
    sock = ctx.socket(P.DEALER)
    try:
        assert isinstance(sock, P.Socket)
        assert sock.context is ctx
        assert sock.type == P.DEALER
        assert isinstance(sock.underlying, int) and sock.underlying != 0
        assert isinstance(sock.fd, int) and sock.fd >= 0
    finally:
        sock.close()


def test_socket_constructor_and_bad_kind(ctx):
    sock = P.Socket(ctx, P.PAIR)
    assert sock.type == P.PAIR
    sock.close()
    with pytest.raises(P.ZMQError) as info:
        ctx.socket(1234)
    assert info.value.errno == errno.EINVAL


def test_zmqerror_carries_errno(make):
    sock = make(P.ROUTER)
    with pytest.raises(P.ZMQError) as info:
        sock.bind('nonsense://where')
    assert info.value.errno == errno.EPROTONOSUPPORT
    assert info.value.strerror == P.strerror(errno.EPROTONOSUPPORT)
    assert str(info.value) == info.value.strerror
    with pytest.raises(P.ZMQError) as info:
        sock.connect('tcp://')
    assert info.value.errno == errno.EINVAL
    err = P.ZMQError(errno.EAGAIN)
    assert (err.errno, err.strerror) == (errno.EAGAIN, P.strerror(errno.EAGAIN))
    assert issubclass(P.Again, P.ZMQError)
    assert P.Again().errno == errno.EAGAIN
    assert 'ZMQError' in repr(P.ZMQError(errno.EINVAL, 'bad'))


def test_zmqerror_is_an_oserror_built_like_pyzmqs():
    # code that caught OSError from bind/connect before ZMQError existed
    assert issubclass(P.ZMQError, OSError) and issubclass(P.Again, OSError)
    err = P.ZMQError(errno.EINVAL)
    assert err.args == (errno.EINVAL, P.strerror(errno.EINVAL))
    assert repr(err) == 'ZMQError(%d, %r)' % (errno.EINVAL, P.strerror(errno.EINVAL))
    text = P.ZMQError('only a message')
    assert (text.errno, text.strerror, str(text)) == (None, 'only a message', 'only a message')
    assert P.ZMQError(errno=errno.EINVAL, msg='mine').strerror == 'mine'
    again = P.Again()
    assert isinstance(again, P.ZMQError) and again.errno == errno.EAGAIN
    assert repr(again).startswith('Again(%d, ' % errno.EAGAIN)


def test_endpoint_with_a_nul_character_is_refused(make):
    sock = make(P.ROUTER)
    for method in (sock.bind, sock.connect):
        with pytest.raises(ValueError, match='NUL'):
            method('inproc://abc\x00def')
        with pytest.raises(ValueError, match='NUL'):
            method(b'inproc://abc\x00def')


def test_pair_inproc(make):
    a, b = connected_pair(make, P.PAIR, P.PAIR)
    b.send(b'hello')
    assert a.recv() == b'hello'
    a.send_multipart([b'one', bytearray(b'two'), memoryview(b'three')])
    assert b.recv_multipart() == [b'one', b'two', b'three']
    a.send(b'', P.SNDMORE)
    a.send(b'tail')
    assert b.recv() == b''
    assert b.rcvmore == 1
    assert b.recv() == b'tail'
    assert b.rcvmore == 0
    a.send_string('héllo')
    assert b.recv_string() == 'héllo'


def test_req_rep_tcp(make):
    rep, req = connected_pair(make, P.REP, P.REQ, 'tcp://127.0.0.1:*')
    assert rep.last_endpoint.startswith(b'tcp://127.0.0.1:')

    def server():
        for _ in range(3):
            msg = rep.recv()
            rep.send(msg.upper())

    g = gevent.spawn(server)
    for word in (b'a', b'bc', b'def'):
        req.send(word)
        assert req.recv() == word.upper()
    g.join(timeout=5)
    assert g.successful()


def test_bind_returns_resolved_endpoint(make):
    sock = make(P.ROUTER)
    bound = sock.bind('tcp://127.0.0.1:*')
    assert isinstance(bound, str)
    port = int(bound.rsplit(':', 1)[1])
    assert port > 0
    assert sock.last_endpoint == bound.encode()
    sock.unbind(bound)
    name = inproc()
    assert sock.bind(name.encode()) == name


def test_dealer_router_with_identity(make):
    router = make(P.ROUTER, linger=0)
    router.bind(inproc())
    dealer = make(P.DEALER, linger=0)
    dealer.identity = b'dealer-1'
    dealer.connect(router.last_endpoint)
    dealer.send_multipart([b'ping', b'1'])
    assert router.recv_multipart() == [b'dealer-1', b'ping', b'1']
    router.send_multipart([b'dealer-1', b'pong'])
    assert dealer.recv_multipart() == [b'pong']


def test_pub_sub_topics(make):
    pub, sub = connected_pair(make, P.PUB, P.SUB, 'tcp://127.0.0.1:*')
    sub.subscribe = b'news'          # pyzmq attribute style
    sub.subscribe('alerts')          # pyzmq method style
    got = []

    def reader():
        while len(got) < 2:
            got.append(sub.recv_multipart())

    g = gevent.spawn(reader)
    # a subscription needs a moment to reach the publisher: keep publishing
    deadline = time.monotonic() + 5
    while not g.dead and time.monotonic() < deadline:
        pub.send_multipart([b'sports', b'ignored'])
        pub.send_multipart([b'news', b'n'])
        pub.send_multipart([b'alerts', b'a'])
        gevent.sleep(0.01)
    g.join(timeout=1)
    assert g.dead
    assert got and all(m[0] in (b'news', b'alerts') for m in got)
    sub.unsubscribe = b'news'
    sub.unsubscribe('alerts')


def test_frames_must_be_bytes_like(make):
    a, _ = connected_pair(make, P.PAIR, P.PAIR)
    with pytest.raises(TypeError):
        a.send('text')
    with pytest.raises(TypeError):
        a.send_multipart([b'ok', 'text'])
    with pytest.raises(TypeError):
        a.send(12)
    with pytest.raises(ValueError):
        a.send_multipart([])


def test_frame_copy_false(make):
    b, a = connected_pair(make, P.ROUTER, P.DEALER, 'tcp://127.0.0.1:*')
    a.send_multipart([b'abc', b'defg'])
    frames = b.recv_multipart(copy=False)
    assert all(isinstance(f, P.Frame) for f in frames)
    routing, first, second = frames
    assert first.bytes == b'abc' and bytes(first) == b'abc' and len(first) == 3
    assert first.more and not second.more
    assert second.buffer.tobytes() == b'defg'
    assert second.buffer.readonly
    assert first == b'abc' and first != b'abd'
    assert first.get('Socket-Type') == 'DEALER'
    assert first.get(P.MORE) == 1
    with pytest.raises(P.ZMQError):
        first.get('No-Such-Property')
    a.send(b'single')
    f = b.recv_multipart(copy=False)[1]
    assert f.bytes == b'single'
    a.send(b'x')
    b.recv()    # routing id frame
    frame = b.recv(copy=False)
    assert isinstance(frame, P.Frame) and frame.bytes == b'x'
    with pytest.raises(TypeError):
        P.Frame()


def test_context_manager_closes(ctx):
    with ctx.socket(P.PAIR) as sock:
        assert not sock.closed
    assert sock.closed


# ---------------------------------------------------------------- options

def test_option_round_trips(make):
    sock = make(P.ROUTER)
    sock.linger = 0
    assert sock.linger == 0
    sock.setsockopt(P.LINGER, 250)
    assert sock.getsockopt(P.LINGER) == 250 and sock.get(P.LINGER) == 250
    sock.set(P.LINGER, 0)
    assert sock.linger == 0
    sock.identity = 'srv'
    assert sock.identity == b'srv' and sock.routing_id == b'srv'
    sock.routing_id = b'\x00bin'
    assert sock.getsockopt(P.ROUTING_ID) == b'\x00bin'
    sock.router_mandatory = True
    assert sock.router_mandatory == 1
    sock.setsockopt(P.ROUTER_HANDOVER, 1)
    assert sock.getsockopt(P.ROUTER_HANDOVER) == 1
    sock.sndhwm = 7
    sock.rcvhwm = 9
    assert (sock.sndhwm, sock.rcvhwm) == (7, 9)
    sock.sndtimeo = 100
    sock.rcvtimeo = 200
    assert (sock.sndtimeo, sock.rcvtimeo) == (100, 200)
    sock.maxmsgsize = 1 << 40
    assert sock.maxmsgsize == 1 << 40
    sock.heartbeat_ivl = 1000
    sock.heartbeat_timeout = 3000
    sock.heartbeat_ttl = 2000
    assert (sock.heartbeat_ivl, sock.heartbeat_timeout, sock.heartbeat_ttl) == (1000, 3000, 2000)
    sock.immediate = 1
    assert sock.immediate == 1
    sock.zap_domain = 'global'
    assert sock.zap_domain == b'global'
    assert sock.mechanism == P.NULL
    sock.plain_server = True
    assert sock.plain_server == 1 and sock.mechanism == P.PLAIN
    client = make(P.DEALER)
    client.plain_username = 'alice'
    client.plain_password = b'secret'
    assert client.plain_username == b'alice'
    assert client.plain_password == b'secret'
    assert client.mechanism == P.PLAIN
    assert sock.events & P.POLLOUT or sock.events == 0


def test_option_errors(make):
    sock = make(P.DEALER)
    with pytest.raises(AttributeError, match='no_such_option'):
        sock.no_such_option
    with pytest.raises(AttributeError, match='no_such_option'):
        sock.no_such_option = 1
    with pytest.raises(AttributeError, match='mechanism'):
        sock.mechanism = 1
    with pytest.raises(AttributeError, match='last_endpoint'):
        sock.last_endpoint = b'x'
    with pytest.raises(TypeError):
        sock.linger = 'long'
    with pytest.raises(TypeError):
        sock.identity = 5
    with pytest.raises(P.ZMQError) as info:
        sock.router_mandatory = 1   # not a ROUTER
    assert info.value.errno == errno.EINVAL
    with pytest.raises(P.ZMQError):
        sock.getsockopt(P.ROUTER_MANDATORY)   # write-only in libzmq, never set


def test_curve_options_take_raw_or_z85(make):
    if not P.has('curve'):
        pytest.skip('libzmq without CURVE')
    public, secret = P.curve_keypair()
    sock = make(P.DEALER)
    sock.curve_publickey = P.z85_decode(public)     # 32 raw bytes
    sock.curve_secretkey = secret.decode()          # 40-char Z85 str
    sock.curve_serverkey = public
    assert sock.curve_publickey == public
    assert sock.curve_secretkey == secret
    assert sock.curve_serverkey == public
    assert sock.mechanism == P.CURVE


def test_curve_keypair_and_z85():
    if not P.has('curve'):
        pytest.skip('libzmq without CURVE')
    public, secret = P.curve_keypair()
    assert isinstance(public, bytes) and len(public) == 40 and len(secret) == 40
    assert public != secret
    assert P.curve_keypair() != (public, secret)
    raw = P.z85_decode(public)
    assert len(raw) == 32
    assert P.z85_encode(raw) == public
    assert P.z85_decode(public.decode()) == raw
    # the Z85 specification's test vector
    vector = bytes([0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B])
    assert P.z85_encode(vector) == b'HelloWorld'
    assert P.z85_decode('HelloWorld') == vector
    assert P.z85_encode(b'') == b''
    with pytest.raises(ValueError):
        P.z85_encode(b'abc')
    with pytest.raises(ValueError):
        P.z85_decode(b'abcd')
    with pytest.raises(ValueError):
        P.z85_decode('Hello\u00e9orl')
    with pytest.raises(ValueError):
        P.z85_decode(b'Hell\x00World')
    with pytest.raises(TypeError):
        P.z85_decode(5)


# ---------------------------------------------------------- cooperation

def test_blocked_recv_does_not_block_other_greenlets(make):
    a, b = connected_pair(make, P.PAIR, P.PAIR, 'tcp://127.0.0.1:*')
    ticks = []

    def ticker():
        while True:
            ticks.append(time.monotonic())
            gevent.sleep(0.01)

    def sender():
        gevent.sleep(0.2)
        b.send(b'late')

    t = gevent.spawn(ticker)
    s = gevent.spawn(sender)
    try:
        started = time.monotonic()
        assert a.recv() == b'late'
        assert time.monotonic() - started >= 0.15
        assert len(ticks) >= 8
    finally:
        t.kill()
        s.kill()


def test_two_receivers_on_one_socket(make):
    a, b = connected_pair(make, P.PAIR, P.PAIR)
    got = []

    def receiver(name):
        got.append((name, a.recv()))

    g1 = gevent.spawn(receiver, 'r1')
    g2 = gevent.spawn(receiver, 'r2')
    gevent.sleep(0.05)
    assert got == []
    b.send(b'm1')
    b.send(b'm2')
    gevent.joinall([g1, g2], timeout=5)
    assert g1.successful() and g2.successful()
    assert sorted(m for _, m in got) == [b'm1', b'm2']
    assert sorted(n for n, _ in got) == ['r1', 'r2']


def test_reading_events_does_not_steal_a_wakeup(make):
    a, b = connected_pair(make, P.PAIR, P.PAIR, 'tcp://127.0.0.1:*')
    got = []
    g = gevent.spawn(lambda: got.append(a.recv()))
    gevent.sleep(0.02)
    started = time.monotonic()
    b.send(b'x')
    while not a.events & P.POLLIN:    # consumes the ZMQ_FD edge
        time.sleep(0.001)
    g.join(timeout=5)
    assert got == [b'x']
    assert time.monotonic() - started < 0.5    # not rescued by the safety timer


def test_many_receivers_many_messages(make):
    pull, push = connected_pair(make, P.PULL, P.PUSH, 'tcp://127.0.0.1:*')
    got = []

    def receiver():
        for _ in range(20):
            got.append(pull.recv())

    gs = [gevent.spawn(receiver) for _ in range(5)]
    gevent.sleep(0.02)
    for i in range(100):
        push.send(b'%d' % i)
        if i % 7 == 0:
            gevent.sleep(0)
    gevent.joinall(gs, timeout=10)
    assert all(g.successful() for g in gs)
    assert sorted(got, key=int) == [b'%d' % i for i in range(100)]


def test_concurrent_multipart_senders_are_not_interleaved(make):
    router, dealer = connected_pair(make, P.ROUTER, P.DEALER, 'tcp://127.0.0.1:*')
    dealer.sndhwm = 2
    router.rcvhwm = 2
    n, per = 50, 4

    def sender(i):
        for j in range(per):
            dealer.send_multipart([b'%d' % i, b'%d' % j, b'x' * (i * 10), b'end-%d' % i])

    def sender_with_switches(i):
        # frames queued by separate send(SNDMORE) calls with switches in between
        for j in range(per):
            dealer.send(b'%d' % i, P.SNDMORE)
            gevent.sleep(0)
            dealer.send(b'%d' % j, P.SNDMORE)
            gevent.sleep(0)
            dealer.send(b'x' * (i * 10), P.SNDMORE)
            dealer.send(b'end-%d' % i)

    gs = [gevent.spawn(sender if i % 2 else sender_with_switches, i) for i in range(n)]
    received = {}
    for _ in range(n * per):
        msg = router.recv_multipart()
        assert len(msg) == 5, msg
        _, i, j, payload, end = msg
        i = int(i)
        assert payload == b'x' * (i * 10)
        assert end == b'end-%d' % i
        received.setdefault(i, []).append(int(j))
        if len(received) % 5 == 0:
            gevent.sleep(0.001)     # a slow reader: senders must park
    gevent.joinall(gs, timeout=10)
    assert all(g.successful() for g in gs)
    assert received == {i: list(range(per)) for i in range(n)}


def test_blocked_sender_wakes_when_a_peer_appears(make):
    dealer = make(P.DEALER, linger=0)   # no peer: send blocks
    router = make(P.ROUTER, linger=0)
    endpoint = router.bind(inproc())
    done = gevent.event.Event()

    def sender():
        dealer.send_multipart([b'hi', b'there'])
        done.set()

    g = gevent.spawn(sender)
    gevent.sleep(0.05)
    assert not done.is_set()
    dealer.connect(endpoint)
    assert done.wait(5)
    assert router.recv_multipart()[1:] == [b'hi', b'there']
    g.join()


def test_push_pull_backpressure(make):
    pull, push = connected_pair(make, P.PULL, P.PUSH, sndhwm=1, rcvhwm=1)
    total = 300

    def pusher(k):
        for i in range(total // 3):
            push.send(b'%d-%d' % (k, i))

    gs = [gevent.spawn(pusher, k) for k in range(3)]
    got = []
    while len(got) < total:
        got.append(pull.recv())
        if len(got) % 50 == 0:
            gevent.sleep(0.005)
    gevent.joinall(gs, timeout=5)
    assert all(g.successful() for g in gs)
    assert len(set(got)) == total


def test_rcvtimeo_raises_again(make):
    a, _ = connected_pair(make, P.PAIR, P.PAIR)
    a.rcvtimeo = 200
    started = time.monotonic()
    with pytest.raises(P.Again) as info:
        a.recv()
    elapsed = time.monotonic() - started
    assert 0.15 <= elapsed < 2.0
    assert info.value.errno == errno.EAGAIN
    a.rcvtimeo = 0
    with pytest.raises(P.Again):
        a.recv_multipart()


def test_killed_waiter_leaves_the_socket_clean(make):
    a, b = connected_pair(make, P.PAIR, P.PAIR)
    with pytest.raises(gevent.Timeout):
        with gevent.Timeout(0.05):
            a.recv()
    state = a._debug_state()
    assert state['recv_waiters'] == 0 and not state['watching']
    g = gevent.spawn(a.recv)
    gevent.sleep(0.02)
    assert a._debug_state()['recv_waiters'] == 1
    g.kill()
    assert a._debug_state() == dict(recv_waiters=0, send_waiters=0, lock_waiters=0,
                                    send_owned=False, watching=0, wake_scheduled=0,
                                    missed_wakeups=0)
    b.send(b'still works')
    assert a.recv() == b'still works'


def test_sndtimeo_raises_again(make):
    dealer = make(P.DEALER, linger=0, sndtimeo=150)   # no peer: cannot send
    started = time.monotonic()
    with pytest.raises(P.Again):
        dealer.send(b'nowhere')
    assert 0.1 <= time.monotonic() - started < 2.0


def test_dontwait_raises_again(make):
    a, b = connected_pair(make, P.PAIR, P.PAIR)
    with pytest.raises(P.Again) as info:
        a.recv(P.DONTWAIT)
    assert info.value.errno == errno.EAGAIN
    with pytest.raises(P.Again):
        a.recv_multipart(flags=P.DONTWAIT)
    lonely = make(P.DEALER, linger=0)
    with pytest.raises(P.Again):
        lonely.send(b'x', P.DONTWAIT)
    with pytest.raises(P.Again):
        lonely.send_multipart([b'x', b'y'], P.DONTWAIT)
    b.send(b'now')
    gevent.sleep(0.01)
    assert a.recv(P.DONTWAIT) == b'now'


def test_router_mandatory_unroutable(make):
    router = make(P.ROUTER, linger=0, router_mandatory=1)
    router.bind(inproc())
    with pytest.raises(P.ZMQError) as info:
        router.send_multipart([b'nobody', b'x'])
    assert info.value.errno == errno.EHOSTUNREACH


def test_poll(make):
    a, b = connected_pair(make, P.PAIR, P.PAIR)
    assert a.poll(0) == 0
    started = time.monotonic()
    assert a.poll(100) == 0
    assert time.monotonic() - started >= 0.08
    gevent.spawn_later(0.05, b.send, b'x')
    assert a.poll(5000) == P.POLLIN
    assert a.poll(None, P.POLLOUT) == P.POLLOUT
    assert a.recv() == b'x'


# ---------------------------------------------------------------- close

def test_close_wakes_blocked_greenlets(make):
    a, _ = connected_pair(make, P.PAIR, P.PAIR)
    lonely = make(P.DEALER)
    errors = []

    def blocked(fn, *args):
        try:
            fn(*args)
        except P.ZMQError as exc:
            errors.append(exc.errno)

    gs = [gevent.spawn(blocked, a.recv), gevent.spawn(blocked, a.recv_multipart),
          gevent.spawn(blocked, lonely.send, b'x')]
    gevent.sleep(0.05)
    assert errors == []
    a.close()
    lonely.close(linger=0)
    gevent.joinall(gs, timeout=5)
    assert errors == [errno.ENOTSOCK] * 3
    assert a.closed and lonely.closed
    a.close()   # idempotent
    with pytest.raises(P.ZMQError) as info:
        a.send(b'x')
    assert info.value.errno == errno.ENOTSOCK
    with pytest.raises(P.ZMQError):
        a.linger
    with pytest.raises(P.ZMQError):
        a.bind(inproc())
    assert 'closed' in repr(a)


def test_close_wakes_greenlet_waiting_for_the_send_side(make):
    router, dealer = connected_pair(make, P.ROUTER, P.DEALER)
    dealer.send(b'part', P.SNDMORE)     # this greenlet owns the send side
    errors = []

    def other():
        try:
            dealer.send(b'whole')
        except P.ZMQError as exc:
            errors.append(exc.errno)

    g = gevent.spawn(other)
    gevent.sleep(0.05)
    assert not g.dead
    dealer.close()
    g.join(timeout=5)
    assert errors == [errno.ENOTSOCK]


def test_send_side_released_after_final_frame(make):
    router, dealer = connected_pair(make, P.ROUTER, P.DEALER)
    dealer.send(b'a', P.SNDMORE)
    g = gevent.spawn(dealer.send_multipart, [b'b1', b'b2'])
    gevent.sleep(0.02)
    assert not g.dead          # waits for our message to end
    dealer.send(b'a-end')
    g.join(timeout=5)
    assert g.successful()
    assert router.recv_multipart()[1:] == [b'a', b'a-end']
    assert router.recv_multipart()[1:] == [b'b1', b'b2']


def test_no_fd_leak(ctx):
    def count():
        return len(os.listdir('/proc/self/fd'))

    ctx.socket(P.PAIR).close()      # libzmq starts its threads (and fds) lazily
    gevent.sleep(0.05)
    before = count()
    for i in range(500):
        sock = ctx.socket(P.DEALER if i % 2 else P.ROUTER)
        if i % 5 == 0:
            sock.bind(inproc())
        sock.close(linger=0)
    # unclosed sockets are closed with linger 0 when released (an inproc
    # connect to a name never bound would keep libzmq's socket alive, by
    # libzmq's design: connect over tcp to a closed port instead)
    for _ in range(100):
        sock = ctx.socket(P.PAIR)
        sock.connect('tcp://127.0.0.1:9')
    del sock
    gc.collect()
    deadline = time.monotonic() + 5
    while count() > before + 3 and time.monotonic() < deadline:
        gevent.sleep(0.02)   # libzmq's reaper closes the fds asynchronously
    assert count() <= before + 3


def test_sockets_are_freed_without_gc(ctx):
    import weakref
    sock = ctx.socket(P.PAIR)
    sock.rcvtimeo = 10
    with pytest.raises(P.Again):
        sock.recv()           # waited once: the watcher must not keep it alive
    ref = weakref.ref(sock)
    del sock
    assert ref() is None


# ------------------------------------------------------------- security

@pytest.fixture
def zap_handler(ctx, request):
    """A PLAIN ZAP handler (accepts login == password, user id = login) on
    our REP socket; unbound and closed at teardown (one per context)."""
    handler = ctx.socket(P.REP)
    handler.linger = 0
    try:
        handler.bind('inproc://zeromq.zap.01')
    except P.ZMQError as exc:
        handler.close()
        pytest.skip('a ZAP handler is already bound in this process: %s' % exc)
    requests = []

    def serve():
        while True:
            try:
                frames = handler.recv_multipart()
            except P.ZMQError:
                return
            version, request_id, domain, address, identity, mechanism = frames[:6]
            requests.append((domain, mechanism, frames[6:]))
            ok = mechanism == b'PLAIN' and frames[6] == frames[7]
            if ok:
                handler.send_multipart([version, request_id, b'200', b'OK', frames[6], b''])
            else:
                handler.send_multipart([version, request_id, b'400', b'denied', b'', b''])

    g = gevent.spawn(serve)

    def stop():
        g.kill()
        handler.unbind('inproc://zeromq.zap.01')
        handler.close()

    request.addfinalizer(stop)
    return requests


def test_plain_handshake_with_python_zap_handler(make, zap_handler):
    server = make(P.ROUTER, linger=0, plain_server=True, zap_domain='pseud-test')
    endpoint = server.bind('tcp://127.0.0.1:*')
    good = make(P.DEALER, linger=0, plain_username='alice', plain_password='alice')
    good.connect(endpoint)
    good.send(b'hello')
    frames = server.recv_multipart(copy=False)
    assert frames[1].bytes == b'hello'
    assert frames[1].get('User-Id') == 'alice'
    assert (b'pseud-test', b'PLAIN', [b'alice', b'alice']) in zap_handler
    server.send_multipart([frames[0].bytes, b'welcome'])
    assert good.recv() == b'welcome'

    bad = make(P.DEALER, linger=0, plain_username='mallory', plain_password='guess')
    bad.connect(endpoint)
    bad.send(b'let me in')
    server.rcvtimeo = 300
    with pytest.raises(P.Again):
        server.recv_multipart()
    assert any(r[2] == [b'mallory', b'guess'] for r in zap_handler)


def test_curve_handshake(make, zap_handler):
    if not P.has('curve'):
        pytest.skip('libzmq without CURVE')
    server_public, server_secret = P.curve_keypair()
    client_public, client_secret = P.curve_keypair()
    server = make(P.ROUTER, linger=0)
    server.curve_server = True
    server.curve_secretkey = server_secret
    endpoint = server.bind('tcp://127.0.0.1:*')
    client = make(P.DEALER, linger=0, curve_serverkey=server_public,
                  curve_publickey=client_public, curve_secretkey=client_secret)
    client.connect(endpoint)
    client.send(b'secret hello')
    server.rcvtimeo = 1000
    # the handler refuses CURVE (it only knows PLAIN): nothing arrives
    with pytest.raises(P.Again):
        server.recv_multipart()
    assert any(r[1] == b'CURVE' and r[2] == [P.z85_decode(client_public)]
               for r in zap_handler)


def test_curve_without_zap_handler(make):
    if not P.has('curve'):
        pytest.skip('libzmq without CURVE')
    server_public, server_secret = P.curve_keypair()
    client_public, client_secret = P.curve_keypair()
    server = make(P.ROUTER, linger=0, curve_server=1, curve_secretkey=server_secret)
    endpoint = server.bind('tcp://127.0.0.1:*')
    client = make(P.DEALER, linger=0, curve_serverkey=server_public,
                  curve_publickey=client_public, curve_secretkey=client_secret)
    client.connect(endpoint)
    client.send(b'encrypted')
    assert server.recv_multipart()[1] == b'encrypted'


# ---------------------------------------------------------------- pyzmq

def test_interop_with_pyzmq_green_dealer(make):
    zmq = pytest.importorskip('zmq.green')
    router = make(P.ROUTER, linger=0)
    endpoint = router.bind('tcp://127.0.0.1:*')
    zctx = zmq.Context()
    dealer = zctx.socket(zmq.DEALER)
    dealer.linger = 0
    dealer.identity = b'pyzmq'
    dealer.connect(endpoint)
    try:
        def echo():
            for _ in range(10):
                peer, body = router.recv_multipart()
                router.send_multipart([peer, body[::-1]])

        g = gevent.spawn(echo)
        for i in range(10):
            dealer.send(b'msg-%d' % i)
            assert dealer.recv() == (b'msg-%d' % i)[::-1]
        g.join(timeout=5)
        assert g.successful()
    finally:
        dealer.close()
        zctx.term()


def test_a_greenlet_dying_mid_message_does_not_block_the_socket():
    """A greenlet that queued part of a message and died: the next sender
    ends that message and goes on instead of waiting forever."""
    ctx = P.Context.instance()
    name = 'inproc://%s' % unique('dying')
    receiver = ctx.socket(P.PAIR)
    sender = ctx.socket(P.PAIR)
    try:
        receiver.linger = sender.linger = 0
        receiver.bind(name)
        sender.connect(name)
        gevent.spawn(sender.send, b'half', P.SNDMORE).join(timeout=2)
        with gevent.Timeout(5):
            sender.send_multipart([b'whole', b'message'])
            first = receiver.recv_multipart()
            second = receiver.recv_multipart()
        assert first == [b'half', b'']          # ended, so the peer can drop it
        assert second == [b'whole', b'message']
    finally:
        sender.close()
        receiver.close()
