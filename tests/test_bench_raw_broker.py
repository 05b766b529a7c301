"""bench/raw_c/raw_peer.c's ``broker`` and ``worker`` roles: the floor rows
of the broker's benchmark scenarios (bench/README.md, docs/guide/scaling.rst)
must route pseud-native's own calls correctly, or their figures measure
something else. raw_peer is compiled with bench/run.sh's own command and
driven through its JSON lines as bench/suite.py drives it.

Every wait is bounded; raw_peer processes end when their stdin closes and
are killed in finalizers if they do not; endpoints are tcp://127.0.0.1:*
read back.
"""
import json
import os
import re
import shlex
import shutil
import subprocess
import time

import gevent
import pytest

import pseud

from naming import unique

pytestmark = pytest.mark.timeout(60)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, 'bench')
ANY = 'tcp://127.0.0.1:*'
# raw_peer's frontend answers to this routing id (RESPONDER_ID in raw_peer.c),
# the service id its callers address
SERVICE = 'bench'


def _child_env():
    """This process's environment without the AddressSanitizer's preload
    (scripts/test.sh --asan): gcc and raw_peer are not what it checks."""
    return {k: v for k, v in os.environ.items()
            if k not in ('LD_PRELOAD', 'ASAN_OPTIONS', 'PYTHONMALLOC')}


def _run_sh_compile_command(binary):
    """bench/run.sh's gcc line for raw_peer, with its variables filled in."""
    with open(os.path.join(BENCH, 'run.sh')) as f:
        lines = [line.strip() for line in f if re.match(r'\s*gcc .*raw_peer\.c', line)]
    assert len(lines) == 1, 'bench/run.sh should compile raw_peer.c in one gcc line: %r' % lines
    line = lines[0].replace('$RAW_C', binary).replace('$BENCH', BENCH)
    assert '$' not in line, 'a variable of bench/run.sh this test does not know: ' + line
    return shlex.split(line)


@pytest.fixture(scope='module')
def raw_peer(tmp_path_factory):
    """raw_peer compiled as bench/run.sh compiles it; the path of the binary."""
    if shutil.which('gcc') is None:
        pytest.skip('no gcc on PATH: bench/run.sh compiles raw_peer.c with gcc')
    probe = subprocess.run(['gcc', '-E', '-x', 'c', '-'], input='#include <zmq.h>\n',
                           capture_output=True, text=True, env=_child_env(), timeout=60)
    if probe.returncode != 0:
        pytest.skip('gcc finds no zmq.h (libzmq3-dev, which scripts/setup-env.sh '
                    'installs): %s' % probe.stderr.strip()[-300:])
    binary = str(tmp_path_factory.mktemp('raw_c') / 'raw_peer')
    built = subprocess.run(_run_sh_compile_command(binary), capture_output=True, text=True,
                           env=_child_env(), timeout=120)
    assert built.returncode == 0, 'compiling raw_peer.c failed:\n' + built.stderr
    return binary


class RawPeer:
    """``raw_peer ARGS`` in a subprocess. Its stdout (JSON lines) goes to a
    file polled cooperatively; its stdin is a pipe held open, since raw_peer
    ends when its stdin does, and a line there asks for its usage."""

    def __init__(self, binary, tmp_path, args):
        name = unique('raw_peer')
        self.out_path, self.err_path = tmp_path / (name + '.out'), tmp_path / (name + '.err')
        self.read_lines = 0
        with open(self.out_path, 'w') as out, open(self.err_path, 'w') as err:
            self.proc = subprocess.Popen([binary] + list(args), stdin=subprocess.PIPE,
                                         stdout=out, stderr=err, env=_child_env())

    def read(self, timeout=20):
        """The next JSON line it prints."""
        deadline = time.monotonic() + timeout
        while True:
            complete = self.out_path.read_text().split('\n')[:-1]
            if len(complete) > self.read_lines:
                self.read_lines += 1
                return json.loads(complete[self.read_lines - 1])
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail('no line from %r within %ss (exit %s): %s' % (
                    self.proc.args, timeout, self.proc.poll(),
                    self.err_path.read_text()[-2000:]))
            gevent.sleep(0.02)

    def usage(self):
        """Its usage line: cpu, rss_kb (and dropped, for the broker)."""
        self.proc.stdin.write(b'stat\n')
        self.proc.stdin.flush()
        return self.read()

    def stop(self):
        """End of stdin ends it; killed if it does not end within 10 s."""
        try:
            self.proc.stdin.close()
        except OSError:   # pragma: no cover (it died and the pipe broke)
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:   # pragma: no cover
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def spawn(raw_peer, tmp_path):
    """spawn(*args) -> a RawPeer running ``raw_peer args``, stopped at teardown."""
    made = []

    def factory(*args):
        made.append(RawPeer(raw_peer, tmp_path, args))
        return made[-1]

    yield factory
    for peer in reversed(made):
        peer.stop()


@pytest.fixture
def raw_broker(spawn):
    """``raw_peer broker tcp://127.0.0.1:* 1``: (process, frontend, backend)."""
    broker = spawn('broker', ANY, '1')
    bound = broker.read()
    assert sorted(bound) == ['backend', 'endpoint'], bound
    return broker, bound['endpoint'], bound['backend']


@pytest.fixture
def pseud_worker():
    """pseud_worker(backend) -> a started pseud-native worker of SERVICE,
    stopped at teardown."""
    made = []

    def factory(backend):
        server = pseud.Server(SERVICE)
        made.append(server)
        server.register_rpc(name='echo')(lambda payload: payload)
        server.register_rpc(name='add')(lambda a, b: a + b)

        @server.register_rpc(name='fail')
        def fail():
            raise ValueError('worker says no')

        server.connect_broker(backend)
        server.start()
        return server

    yield factory
    for server in made:
        server.stop()


def test_raw_broker_between_pseud_client_and_pseud_worker(raw_broker, pseud_worker,
                                                          make_client):
    """The pseud-native+raw-broker row: pseud-native's client and worker
    through ``raw_peer broker``."""
    broker, frontend, backend = raw_broker
    pseud_worker(backend)
    assert broker.read() == {'event': 'joined', 'workers': 1}
    client = make_client(SERVICE, frontend, timeout=20)
    assert client.add(2, 3).get() == 5
    assert client.echo(b'x' * 30).get() == b'x' * 30
    with pytest.raises(ValueError, match='worker says no'):
        client.fail().get()
    # broker-pipelined: 100 calls in flight, each back with its own result
    payloads = [b'%d:' % n + b'y' * n for n in range(100)]
    futures = [client.echo(p) for p in payloads]
    assert [f.get() for f in futures] == payloads
    assert broker.usage()['dropped'] == 0


def test_raw_broker_and_raw_worker_echo_a_pseud_clients_payload(raw_broker, spawn,
                                                                make_client):
    """The raw-c row's broker and worker, called by pseud-native's client:
    raw_peer's responder cuts the payload out of the WORK body
    (["echo", [payload], {}]) and answers it as the OK body."""
    broker, frontend, backend = raw_broker
    worker = spawn('worker', backend)
    assert worker.read() == {'event': 'serving'}
    assert broker.read() == {'event': 'joined', 'workers': 1}
    client = make_client(SERVICE, frontend, timeout=20)
    # msgpack bin 8, 16 and 32 headers, empty, and a str
    for payload in (b'x' * 30, b'', b'z' * 300, bytes(range(256)) * 300, 'text'):
        assert client.echo(payload).get() == payload
    payloads = [b'%d' % n for n in range(100)]
    futures = [client.echo(p) for p in payloads]
    assert [f.get() for f in futures] == payloads
    assert broker.usage()['dropped'] == 0
    assert set(worker.usage()) == {'cpu', 'rss_kb'}
