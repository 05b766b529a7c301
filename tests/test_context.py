"""context= (docs/guide/calls.rst, "context= and inproc with pyzmq"): a
pyzmq Context whose libzmq is the very library pseud uses is shared, so
that inproc:// endpoints are common to both; any other is not, said once,
and an inproc:// bind or connect on such an RPC is refused.

Without context=, peers live in pyzmq's zmq.green.Context.instance() when
pyzmq is imported and shares pseud's libzmq (decided once per process),
else in pseud's own context, silently. Which of the two this run has
depends on its pyzmq (pyzmq_sharing.py); each decision is also checked in
a fresh interpreter, where the import order is the test's."""
import ctypes
import logging
import os
import subprocess
import sys
import textwrap

import gevent
import pytest

import pseud
from pseud import _pseud

from naming import unique
from pyzmq_sharing import (NOT_SHARED, NOT_SHARED_REASON, SHARED, SHARING_REQUIRED,
                           pyzmq_backend_file)

pytestmark = pytest.mark.timeout(60)

ZMQ_IO_THREADS = 1      # zmq.h


def mapped_libzmq_files():
    """The libzmq files loaded into this process (/proc/self/maps)."""
    with open('/proc/self/maps') as maps:
        return {line.split()[-1] for line in maps
                if '/libzmq' in line.split()[-1]}


def our_libzmq():
    """The libzmq pseud._pseud is linked to: the one loaded file outside
    pyzmq's own copy (pyzmq.libs/, zmq/.libs)."""
    import zmq
    pyzmq_root = os.path.dirname(os.path.dirname(zmq.__file__))
    ours = [f for f in mapped_libzmq_files()
            if not f.startswith(os.path.join(pyzmq_root, 'pyzmq.libs'))
            and not f.startswith(os.path.dirname(zmq.__file__))]
    assert len(ours) == 1, mapped_libzmq_files()
    return ours[0]


class OurLibzmqContext:
    """A libzmq context made with ctypes from pseud's own libzmq, shaped
    like pyzmq's (`underlying`). pseud finds the libzmq of a context
    through the extension module defining its class: this class says it
    comes from pseud._pseud, which links the very libzmq used here."""

    __module__ = 'pseud._pseud'

    def __init__(self, io_threads=1):
        self.lib = ctypes.CDLL(our_libzmq())
        self.lib.zmq_ctx_new.restype = ctypes.c_void_p
        self.lib.zmq_ctx_term.argtypes = [ctypes.c_void_p]
        self.lib.zmq_ctx_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        self.underlying = self.lib.zmq_ctx_new()
        assert self.underlying
        if io_threads != 1:
            assert self.lib.zmq_ctx_set(self.underlying, ZMQ_IO_THREADS, io_threads) == 0

    def term(self):
        assert self.lib.zmq_ctx_term(self.underlying) == 0


def run_fresh(script, tmp_path):
    """Run `script` in a fresh interpreter (the decision of the default
    context is the process's, and the import order is the script's); it
    prints OK when every assertion held."""
    out = subprocess.run([sys.executable, '-c', textwrap.dedent(script)],
                         capture_output=True, text=True, timeout=40,
                         env=dict(os.environ), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == 'OK', (out.stdout, out.stderr)


@pytest.fixture
def our_context():
    made = []

    def factory(**kw):
        made.append(OurLibzmqContext(**kw))
        return made[-1]
    yield factory
    # the RPCs were stopped by their own finalizers (make_server and
    # make_client run after this one is set up, so they finish first)
    for ctx in made:
        ctx.term()


def test_a_context_of_our_libzmq_is_shared(our_context, make_server, make_client):
    ctx = our_context()
    name = 'inproc://%s' % unique('shared')
    server, _ = make_server(endpoint=name, context=ctx)
    server.register_rpc(name='where')(lambda: 'shared')
    # a client in that context reaches the endpoint...
    shared = make_client(server.user_id, name, context=ctx)
    assert shared.where().get() == 'shared'
    # ...one in pseud's own context does not: the server's socket really
    # lives in the context given
    own = make_client(server.user_id, name, timeout=0.5)
    with pytest.raises(gevent.Timeout):
        own.where().get()


def test_disconnect_and_reconnect_in_a_shared_context(our_context, make_server, make_client):
    # disconnect() waits for the context's I/O thread (issue 14): in a
    # shared context it waits for that context's thread
    ctx = our_context()
    server, bound = make_server(context=ctx)
    server.register_rpc(name='ping')(lambda: 'pong')
    client = make_client(server.user_id, bound, context=ctx)
    for _ in range(20):
        assert client.ping().get() == 'pong'
        client.disconnect(bound)
        client.connect(bound)


def test_a_context_with_two_io_threads_is_not_shared(our_context, make_server, caplog):
    ctx = our_context(io_threads=2)
    with caplog.at_level(logging.DEBUG, logger='pseud'):
        server = pseud.Server(unique('two'), context=ctx)
    try:
        with pytest.raises(ValueError, match='2 I/O threads'):
            server.bind('inproc://%s' % unique('two'))
        assert server.bind('tcp://127.0.0.1:*').startswith('tcp://')
    finally:
        server.stop()


def test_pseud_context_and_none_are_the_same_default(make_server, make_client):
    # rpc.context (pseud's Context) given back as context= means none given
    name = 'inproc://%s' % unique('own')
    server, _ = make_server(endpoint=name, context=_pseud.Context.instance())
    server.register_rpc(name='ping')(lambda: 'pong')
    client = make_client(server.user_id, name, context=None)
    assert client.ping().get() == 'pong'


def test_context_that_is_no_context_is_refused():
    with pytest.raises(TypeError, match='context= must be a pyzmq Context'):
        pseud.Server('x', context=object())


def test_foreign_pyzmq_context_warns_once_and_refuses_inproc_only(tmp_path):
    """pyzmq's wheel carries its own libzmq: its contexts cannot be shared."""
    if SHARED:
        pytest.skip("this pyzmq uses pseud's libzmq: see the sharing tests")
    script = '''
        import logging, sys
        import zmq
        import pseud
        records = []
        class Keep(logging.Handler):
            def emit(self, record):
                records.append(record)
        logging.getLogger('pseud').addHandler(Keep())
        ctx = zmq.Context.instance()
        server = pseud.Server('s', context=ctx)
        client = pseud.Client('s', context=ctx)
        warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, warnings          # once per process
        text = warnings[0]
        assert 'pyzmq.libs' in text and 'no-binary' in text, text
        # tcp:// works as always
        ep = server.bind('tcp://127.0.0.1:*')
        server.register_rpc(str.upper)
        server.start()
        client.connect(ep)
        assert client.upper('ok').get() == 'OK'
        # inproc:// could not be reached from ctx: refused, saying why
        for call in (server.bind, client.connect):
            try:
                call('inproc://nowhere')
            except ValueError as exc:
                assert 'inproc://nowhere' in str(exc) and 'no-binary' in str(exc), exc
            else:
                raise AssertionError('inproc accepted')
        client.stop(); server.stop()
        print('OK')
    '''
    run_fresh(script, tmp_path)




@pytest.mark.skipif(NOT_SHARED, reason=NOT_SHARED_REASON)
def test_pyzmq_linked_to_our_libzmq_reaches_pseud_inproc(tmp_path):
    run_fresh('''
        import gevent, zmq, zmq.green
        import pseud
        from pseud.packer import Packer
        ctx = zmq.green.Context(io_threads=1)      # given, not the default instance
        server = pseud.Server('echo', context=ctx)
        server.bind('inproc://shared-with-pyzmq')
        server.register_rpc(name='job')(lambda a, b: a + b)
        server.start()
        sock = ctx.socket(zmq.ROUTER)
        sock.connect('inproc://shared-with-pyzmq')
        sock.send_multipart([b'echo', b'', b'v1', b'id', b'\\x03',
                             Packer().packb(('job', (1, 2), {}))])
        with gevent.Timeout(10):
            reply = sock.recv_multipart()
        assert reply == [b'echo', b'', b'v1', b'id', b'\\x01', Packer().packb(3)], reply
        # and a pseud client on that pyzmq context, the other way round
        client = pseud.Client('echo', context=ctx)
        client.connect('inproc://shared-with-pyzmq')
        assert client.job(2, 3).get() == 5
        client.stop(); server.stop(); sock.close(linger=0)
        ctx.term()
        print('OK')
    ''', tmp_path)


# ---- no context=: the process's default (pyzmq's when it can share)

# What the scripts below share: a server without context= on an inproc
# endpoint, its job, and a raw pyzmq ROUTER calling it with WORK frames.
PRELUDE = """
import logging, sys
import gevent
records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append(record)
logging.getLogger('pseud').addHandler(Keep())
logging.getLogger('pseud').setLevel(logging.DEBUG)

def serve(name, user_id='echo'):
    import pseud
    server = pseud.Server(user_id)
    server.bind(name)
    server.register_rpc(name='job')(lambda a, b: a + b)
    server.start()
    return server

def raw_call(sock, user_id=b'echo', wait=10):
    # upstream's test_server.py way: WORK frames from a raw ROUTER; the
    # reply, or None when nothing came within `wait` seconds (poll: a
    # plain pyzmq socket's recv would block the hub)
    from pseud.packer import Packer
    sock.send_multipart([user_id, b'', b'v1', b'id', b'\x03',
                         Packer().packb(('job', (1, 2), {}))])
    if not sock.poll(wait * 1000):
        return None
    reply = sock.recv_multipart()
    assert reply == [user_id, b'', b'v1', b'id', b'\x01', Packer().packb(3)], reply
    return reply

def warnings():
    return [r.getMessage() for r in records if r.levelno >= logging.WARNING]
"""


def test_the_pyzmq_of_this_run_is_shared_when_required():
    """PSEUD_TEST_SHARED_PYZMQ=1 (scripts/test.sh's pass with pyzmq built
    from source): the sharing must be real, not skipped."""
    if not SHARING_REQUIRED:
        pytest.skip('PSEUD_TEST_SHARED_PYZMQ is not set: any pyzmq will do')
    import zmq
    assert SHARED, ("PSEUD_TEST_SHARED_PYZMQ=1, but pyzmq %s (%s) calls a libzmq other "
                    "than pseud's: was it built against the system libzmq?"
                    % (zmq.__version__, pyzmq_backend_file()))


@pytest.mark.skipif(NOT_SHARED, reason=NOT_SHARED_REASON)
def test_default_is_pyzmq_green_instance_both_ways(tmp_path):
    run_fresh(PRELUDE + r"""
import zmq.green as zmq
import pseud
from pseud.packer import Packer
ctx = zmq.Context.instance()
# a raw pyzmq socket reaches a pseud server given no context= ...
server = serve('inproc://served-by-pseud')
sock = ctx.socket(zmq.ROUTER)
sock.connect('inproc://served-by-pseud')
assert raw_call(sock) is not None
# ... and a pseud client given no context= reaches a pyzmq endpoint
peer = ctx.socket(zmq.ROUTER)
peer.identity = b'pyzmq-peer'
peer.bind('inproc://served-by-pyzmq')
client = pseud.Client('pyzmq-peer')
client.connect('inproc://served-by-pyzmq')
future = client.job(2, 3)
with gevent.Timeout(10):
    frames = peer.recv_multipart()
assert frames[1:3] == [b'', b'v1'] and frames[4] == b'\x03', frames
assert Packer().unpackb(frames[5]) == ('job', (2, 3), {}), frames
peer.send_multipart([frames[0], b'', b'v1', frames[3], b'\x01', Packer().packb(5)])
with gevent.Timeout(10):
    assert future.get() == 5
# not zmq.Context.instance(): pyzmq keeps that one apart from the green one
import zmq as plain
other = plain.Context.instance().socket(plain.ROUTER)
other.connect('inproc://served-by-pseud')
assert raw_call(other, wait=0.5) is None
assert not warnings(), warnings()
for s in (sock, peer, other):
    s.close(linger=0)
client.stop(); server.stop()
print('OK')
""", tmp_path)


@pytest.mark.skipif(NOT_SHARED, reason=NOT_SHARED_REASON)
def test_default_follows_a_new_pyzmq_instance(tmp_path):
    # pyzmq makes a new instance once the old one is closed: new peers
    # live there, as upstream's did (Context.instance() asked each time)
    run_fresh(PRELUDE + r"""
import zmq.green as zmq
first = zmq.Context.instance()
server = serve('inproc://first')
server.stop()
first.term()
ctx = zmq.Context.instance()
assert ctx is not first
server = serve('inproc://second')
sock = ctx.socket(zmq.ROUTER)
sock.connect('inproc://second')
assert raw_call(sock) is not None
sock.close(linger=0)
server.stop()
print('OK')
""", tmp_path)


@pytest.mark.skipif(NOT_SHARED, reason=NOT_SHARED_REASON)
def test_syncclient_and_broker_live_in_the_shared_default(tmp_path):
    # every pseud peer without context= is in the same context: a
    # SyncClient and a Broker reach servers over inproc:// as before
    run_fresh(PRELUDE + r"""
import threading
import zmq.green as zmq
import pseud
server = serve('inproc://for-sync')
sync = pseud.SyncClient('echo', timeout=10)
sync.connect('inproc://for-sync')
box = []
thread = threading.Thread(target=lambda: box.append(sync.job(4, 5)), daemon=True)
thread.start()
with gevent.Timeout(10):
    while thread.is_alive():
        gevent.sleep(0.01)
assert box == [9], box
sync.close()

broker = pseud.Broker('svc', frontend='inproc://front', backend='inproc://back')
broker.start()
worker = pseud.Server('svc')
worker.register_rpc(name='job')(lambda a, b: a * b)
worker.connect_broker('inproc://back')
worker.start()
client = pseud.Client('svc', timeout=10)
client.connect('inproc://front')
with gevent.Timeout(10):
    assert client.job(6, 7).get() == 42
# the broker's frontend is reachable from the green instance too
sock = zmq.Context.instance().socket(zmq.ROUTER)
sock.connect('inproc://front')
from pseud.packer import Packer
sock.send_multipart([b'svc', b'', b'v1', b'id', b'\x03', Packer().packb(('job', (2, 3), {}))])
with gevent.Timeout(10):
    reply = sock.recv_multipart()
assert reply[4:] == [b'\x01', Packer().packb(6)], reply
sock.close(linger=0)
client.stop(); worker.stop(); broker.stop(); server.stop()
print('OK')
""", tmp_path)


def test_default_is_decided_once_whatever_is_imported_after(tmp_path):
    # the first peer without context= decides, here before pyzmq is
    # imported: pseud's own context, for the peers made after too, which
    # reach the earlier ones over inproc://
    run_fresh(PRELUDE + r"""
import pseud
assert 'zmq' not in sys.modules
before = serve('inproc://made-before')
import zmq.green as zmq
after_server = serve('inproc://made-after', user_id='late')
after_client = pseud.Client('echo', timeout=10)
after_client.connect('inproc://made-before')
early_client = pseud.Client('late', timeout=10)
early_client.connect('inproc://made-after')
with gevent.Timeout(10):
    assert after_client.job(1, 1).get() == 2
    assert early_client.job(2, 2).get() == 4
# so no pyzmq socket reaches them, shared libzmq or not
sock = zmq.Context.instance().socket(zmq.ROUTER)
sock.connect('inproc://made-after')
assert raw_call(sock, user_id=b'late', wait=0.5) is None
assert not warnings(), warnings()
sock.close(linger=0)
for rpc in (after_client, early_client, after_server, before):
    rpc.stop()
print('OK')
""", tmp_path)


@pytest.mark.skipif(SHARED, reason='this pyzmq shares pseud\'s libzmq: the tests above')
def test_unshareable_pyzmq_leaves_the_default_alone_silently(tmp_path):
    # pyzmq imported first, but a wheel: pseud's own context, no warning,
    # inproc:// between pseud peers as ever, and no pyzmq context made
    run_fresh(PRELUDE + r"""
import zmq
import zmq.green
import pseud
server = serve('inproc://own')
client = pseud.Client('echo', timeout=10)
client.connect('inproc://own')
with gevent.Timeout(10):
    assert client.job(3, 4).get() == 7
assert not warnings(), warnings()
assert zmq.green.Context._instance is None and zmq.Context._instance is None
assert any('pseud\'s own' in r.getMessage() and 'libzmq of' in r.getMessage()
           for r in records if r.levelno == logging.DEBUG), [r.getMessage() for r in records]
client.stop(); server.stop()
print('OK')
""", tmp_path)
