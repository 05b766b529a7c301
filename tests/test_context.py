"""context= (docs/guide/calls.rst, "context= and inproc with pyzmq"): a
pyzmq Context whose libzmq is the very library pseud uses is shared, so
that inproc:// endpoints are common to both; any other is not, said once,
and an inproc:// bind or connect on such an RPC is refused."""
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

from conftest import unique

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


def pyzmq_has_its_own_libzmq():
    import zmq
    zmq.Context.instance()
    return len(mapped_libzmq_files()) > 1


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


def test_pseud_context_and_none_are_pseud_own(make_server, make_client):
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
    if not pyzmq_has_its_own_libzmq():
        pytest.skip("this pyzmq uses pseud's libzmq: see the sharing tests")
    script = textwrap.dedent('''
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
    ''')
    out = subprocess.run([sys.executable, '-c', script], capture_output=True,
                         text=True, timeout=30, env=dict(os.environ), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == 'OK'


SYSTEM_PYZMQ = os.environ.get('PSEUD_TEST_SYSTEM_PYZMQ')


@pytest.mark.skipif(not SYSTEM_PYZMQ, reason='set PSEUD_TEST_SYSTEM_PYZMQ to the '
                    'site-packages of a pyzmq built against the system libzmq '
                    '(pip install --no-binary pyzmq pyzmq)')
def test_pyzmq_linked_to_our_libzmq_reaches_pseud_inproc(tmp_path):
    script = textwrap.dedent('''
        import sys, gevent, zmq, zmq.green
        assert zmq.__file__.startswith(sys.path[0]), zmq.__file__
        import pseud
        from pseud.packer import Packer
        ctx = zmq.green.Context.instance()
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
        print('OK')
    ''')
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(p for p in (env.get('PYTHONPATH'), SYSTEM_PYZMQ) if p)
    # the system pyzmq first, ahead of the test venv's wheel
    script = 'import sys; sys.path.insert(0, %r)\n' % SYSTEM_PYZMQ + script
    out = subprocess.run([sys.executable, '-c', script], capture_output=True,
                         text=True, timeout=30, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == 'OK'
