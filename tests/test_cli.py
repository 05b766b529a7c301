"""The command line (pseud/cli.py): `pseud call` and `pseud serve` run as
subprocesses (python -m pseud), against each other and against ordinary
in-process Server and Client objects. Subprocesses are waited for by
polling, so this process's servers keep serving meanwhile."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import gevent
import pytest

import pseud
from pseud.cli import exposed, parse_value, to_json

from naming import unique

pytestmark = pytest.mark.timeout(90)

SUBPROCESS_LIMIT = 40   # seconds: a loaded 2-core machine starts python slowly


class Ran:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err

    def __repr__(self):
        return 'exit %s\nstdout: %s\nstderr: %s' % (self.code, self.out, self.err)


def _env(extra_path=None):
    env = dict(os.environ)
    if extra_path:
        env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(extra_path),
                                                          env.get('PYTHONPATH')]))
    return env


def run_cli(tmp_path, *args, extra_path=None):
    """Run `python -m pseud ARGS` to completion without blocking the hub."""
    name = unique('cli')
    out_path, err_path = tmp_path / (name + '.out'), tmp_path / (name + '.err')
    with open(out_path, 'w') as out, open(err_path, 'w') as err:
        proc = subprocess.Popen([sys.executable, '-m', 'pseud'] + list(args),
                                stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                env=_env(extra_path), cwd=str(tmp_path))
    deadline = time.monotonic() + SUBPROCESS_LIMIT
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail('pseud %s did not finish in %ss' % (args, SUBPROCESS_LIMIT))
        gevent.sleep(0.02)
    return Ran(proc.returncode, out_path.read_text(), err_path.read_text())


class Served:
    """A `pseud serve` (or `pseud broker`) subprocess; endpoint read from
    its output."""

    def __init__(self, proc, out_path, err_path):
        self.proc, self.out_path, self.err_path = proc, out_path, err_path
        self.endpoint = None
        self.lines = []

    def wait_line(self, prefix):
        """The first line of its output that starts with `prefix`, once
        printed; fails if it exits first or takes too long."""
        deadline = time.monotonic() + SUBPROCESS_LIMIT
        while time.monotonic() < deadline:
            self.lines = self.out_path.read_text().splitlines()
            for line in self.lines:
                if line.startswith(prefix):
                    return line
            if self.proc.poll() is not None:
                break
            gevent.sleep(0.02)
        pytest.fail('%s did not print %r: %s / %s' % (
            ' '.join(self.proc.args[2:4]), prefix, self.out_path.read_text(),
            self.err_path.read_text()))

    def wait_ready(self):
        self.endpoint = self.wait_line('serving ').split()[-1]
        return self

    def line(self, prefix):
        return next(line for line in self.lines if line.startswith(prefix))

    def stop(self, signum=signal.SIGTERM):
        """Signal it and return its exit code (it must stop on its own)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        deadline = time.monotonic() + SUBPROCESS_LIMIT
        while self.proc.poll() is None and time.monotonic() < deadline:
            gevent.sleep(0.02)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            pytest.fail('pseud serve did not stop on signal %d' % signum)
        return self.proc.returncode

    @property
    def stderr(self):
        return self.err_path.read_text()


@pytest.fixture
def start_cli(tmp_path):
    """Start `python -m pseud ARGS` in the background (killed at the end)."""
    started = []

    def factory(*args, extra_path=None):
        name = unique('run')
        out_path, err_path = tmp_path / (name + '.out'), tmp_path / (name + '.err')
        with open(out_path, 'w') as out, open(err_path, 'w') as err:
            proc = subprocess.Popen(
                [sys.executable, '-m', 'pseud'] + list(args),
                stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                env=_env(extra_path), cwd=str(tmp_path))
        started.append(Served(proc, out_path, err_path))
        return started[-1]

    yield factory
    for served in started:
        if served.proc.poll() is None:
            served.proc.kill()
            served.proc.wait()


@pytest.fixture
def serve_cli(start_cli):
    def factory(target, *args, extra_path=None, server_id=None,
                where=('--bind', 'tcp://127.0.0.1:*')):
        server_id = server_id or unique('svc')
        served = start_cli('serve', target, *where, '--id', server_id, *args,
                           extra_path=extra_path)
        served.server_id = server_id
        return served.wait_ready()

    return factory


SERVICE = '''
import os
from os.path import join            # imported: not exposed

import gevent

__version__ = '1'                   # data: not exposed


def add(a, b=0):
    return a + b


def fail(message):
    raise ValueError(message)


def nap(seconds):
    gevent.sleep(seconds)
    return 'rested'


def blob():
    return {b'key': (1, b'\\x00\\xff'), 'pi': 3.5, 'none': None}


def _private():
    return 'hidden'


class Counter:
    def __init__(self):
        self.count = 0
        self.inner = Inner()

    def incr(self, by=1):
        self.count += by
        return self.count

    def _hidden(self):
        return 'hidden'


class Inner:
    def where(self):
        return 'deep'


counter = Counter()
'''


@pytest.fixture
def service_module(tmp_path):
    """A module on a fresh directory: (module name, directory)."""
    name = unique('clisvc')
    (tmp_path / (name + '.py')).write_text(SERVICE)
    return name, tmp_path


# ---------------------------------------------------------------- pure parts

def test_arguments_are_json_else_strings():
    assert parse_value('3') == 3
    assert parse_value('[1, "a"]') == [1, 'a']
    assert parse_value('null') is None
    assert parse_value('"quoted"') == 'quoted'
    assert parse_value('abc') == 'abc'
    assert parse_value('') == ''


def test_results_become_json_with_reprs_for_the_rest():
    assert json.dumps(to_json({b'k': (1, b'\x00'), 'x': None})) == \
        '{"b\'k\'": [1, "b\'\\\\x00\'"], "x": null}'


def test_exposed_names_follow_the_documented_rules(service_module, monkeypatch):
    name, directory = service_module
    monkeypatch.syspath_prepend(str(directory))
    module = __import__(name)
    assert [n for n, _ in exposed(module)] == [
        'add', 'blob', 'counter.incr', 'counter.inner.where', 'fail', 'nap']
    funcs = dict(exposed(module))
    assert funcs['counter.inner.where']() == 'deep'


# -------------------------------------------------- call against a Server

def test_call_prints_the_result_as_json(make_server, tmp_path):
    server, endpoint = make_server()
    server.register_rpc(name='math.add')(lambda a, b, scale=1: (a + b) * scale)
    ran = run_cli(tmp_path, 'call', endpoint, server.user_id.decode(), 'math.add',
                  '2', '3', '--kw', 'scale=10')
    assert ran.code == 0, ran
    assert json.loads(ran.out) == 50


def test_call_passes_non_json_arguments_as_strings(make_server, tmp_path):
    server, endpoint = make_server()
    server.register_rpc(name='echo')(lambda *args, **kw: [list(args), kw])
    ran = run_cli(tmp_path, 'call', endpoint, server.user_id.decode(), 'echo',
                  'abc', '{"a": [1]}', '--kw', 'flag=true', '--kw', 'word=xyz')
    assert ran.code == 0, ran
    assert json.loads(ran.out) == [['abc', {'a': [1]}], {'flag': True, 'word': 'xyz'}]


def test_call_prints_bytes_as_repr(make_server, tmp_path):
    server, endpoint = make_server()
    server.register_rpc(name='raw')(lambda: [b'\x00ab', 'text'])
    ran = run_cli(tmp_path, 'call', endpoint, server.user_id.decode(), 'raw')
    assert ran.code == 0, ran
    assert json.loads(ran.out) == ["b'\\x00ab'", 'text']


def test_remote_exception_exits_1_with_class_message_and_traceback(make_server, tmp_path):
    server, endpoint = make_server()

    def explode(what):
        raise KeyError('no such thing: %s' % what)
    server.register_rpc(explode)
    ran = run_cli(tmp_path, 'call', endpoint, server.user_id.decode(), 'explode', 'x')
    assert ran.code == 1, ran
    assert ran.out == ''
    first = ran.err.splitlines()[0]
    assert first.startswith('KeyError: ') and 'no such thing: x' in first
    assert '-- Beginning of remote traceback --' in ran.err
    assert 'in explode' in ran.err          # the server's frame


def test_unknown_method_exits_1_with_service_not_found(make_server, tmp_path):
    server, endpoint = make_server()
    ran = run_cli(tmp_path, 'call', endpoint, server.user_id.decode(), 'nowhere.to.go')
    assert ran.code == 1, ran
    assert ran.err.startswith('ServiceNotFoundError: ')
    assert 'nowhere.to.go' in ran.err


def test_timeout_exits_2_with_one_line(make_server, tmp_path):
    server, endpoint = make_server()
    server.register_rpc(name='slow')(lambda: gevent.sleep(30))
    ran = run_cli(tmp_path, 'call', endpoint, server.user_id.decode(), 'slow',
                  '--timeout', '0.5')
    assert ran.code == 2, ran
    assert len(ran.err.strip().splitlines()) == 1
    assert 'no reply' in ran.err and '0.5' in ran.err


def test_plain_login(make_server, tmp_path):
    server, endpoint = make_server(security_plugin='plain')
    server.register_rpc(name='whoami', with_identity=True)(lambda user_id: user_id)
    ran = run_cli(tmp_path, 'call', endpoint, server.user_id.decode(), 'whoami',
                  '--security', 'plain', '--user', 'alice', '--password', 'alice')
    assert ran.code == 0, ran
    assert json.loads(ran.out) == "b'alice'"
    # PLAIN refused (password != login): no reply, the timeout's exit code
    ran = run_cli(tmp_path, 'call', endpoint, server.user_id.decode(), 'whoami',
                  '--security', 'plain', '--user', 'alice', '--password', 'wrong',
                  '--timeout', '0.6')
    assert ran.code == 2, ran


def test_trusted_curve_with_a_given_key_pair(make_server, tmp_path):
    server_public, server_secret = pseud.curve_keypair()
    client_public, client_secret = pseud.curve_keypair()
    server, endpoint = make_server(security_plugin='trusted_curve',
                                   public_key=server_public, secret_key=server_secret)
    server.auth_backend.known_identities[b'carol'] = client_public
    server.register_rpc(name='whoami', with_identity=True)(lambda user_id: user_id)
    ran = run_cli(tmp_path, 'call', endpoint, server.user_id.decode(), 'whoami',
                  '--curve-server-key=' + server_public.decode(),
                  '--curve-public-key=' + client_public.decode(),
                  '--curve-secret-key=' + client_secret.decode())
    assert ran.code == 0, ran
    assert json.loads(ran.out) == "b'carol'"


def test_untrusted_curve_with_a_generated_key_pair_logs_in(make_server, tmp_path):
    server_public, server_secret = pseud.curve_keypair()
    server, endpoint = make_server(security_plugin='untrusted_curve',
                                   public_key=server_public, secret_key=server_secret)
    server.auth_backend.user_map[b'dave'] = b'sesame'
    server.register_rpc(name='add')(lambda a, b: a + b)
    ran = run_cli(tmp_path, 'call', endpoint, server.user_id.decode(), 'add', '1', '2',
                  '--curve-server-key=' + server_public.decode(),
                  '--user', 'dave', '--password', 'sesame')
    assert ran.code == 0, ran
    assert json.loads(ran.out) == 3


KEYS = [key.decode() for key in pseud.curve_keypair() + pseud.curve_keypair()]


@pytest.mark.parametrize('args', [
    ['--user', 'u'],                                    # --user without a mechanism
    ['--security', 'plain'],                            # plain without --user
    ['--curve-server-key=' + KEYS[0], '--curve-public-key=' + KEYS[2]],  # half a pair
    ['--curve-server-key=not a key'],
    ['--kw', 'not an identifier=1'],
    ['--timeout', '0'],
])
def test_wrong_usage_exits_64_saying_what(args, tmp_path):
    ran = run_cli(tmp_path, 'call', 'tcp://127.0.0.1:1', 'srv', 'name', *args)
    assert ran.code == 64, ran
    assert 'error:' in ran.err


# ------------------------------------------------------- serve and call

def test_serve_and_call_each_other(serve_cli, service_module, tmp_path):
    name, directory = service_module
    served = serve_cli(name, '-v', extra_path=directory)
    assert served.endpoint.startswith('tcp://127.0.0.1:')
    assert not served.endpoint.endswith(':*')
    assert served.line('exposing ') == \
        'exposing add, blob, counter.incr, counter.inner.where, fail, nap'
    call = ('call', served.endpoint, served.server_id)

    ran = run_cli(tmp_path, *call, 'add', '"py"', '--kw', 'b="thon"')
    assert (ran.code, json.loads(ran.out)) == (0, 'python'), ran
    ran = run_cli(tmp_path, *call, 'counter.incr', '--kw', 'by=5')
    assert (ran.code, json.loads(ran.out)) == (0, 5), ran
    ran = run_cli(tmp_path, *call, 'counter.incr')
    assert (ran.code, json.loads(ran.out)) == (0, 6), ran       # same instance
    ran = run_cli(tmp_path, *call, 'counter.inner.where')
    assert (ran.code, json.loads(ran.out)) == (0, 'deep'), ran
    ran = run_cli(tmp_path, *call, 'blob')
    assert ran.code == 0, ran
    assert json.loads(ran.out) == {"b'key'": [1, "b'\\x00\\xff'"], 'pi': 3.5, 'none': None}
    ran = run_cli(tmp_path, *call, 'fail', 'broken')
    assert ran.code == 1, ran
    assert ran.err.startswith('ValueError: broken')
    ran = run_cli(tmp_path, *call, 'join', 'a', 'b')      # imported: not served
    assert ran.code == 1 and ran.err.startswith('ServiceNotFoundError'), ran
    ran = run_cli(tmp_path, *call, '_private')
    assert ran.code == 1 and ran.err.startswith('ServiceNotFoundError'), ran
    ran = run_cli(tmp_path, *call, 'nap', '5', '--timeout', '0.5')
    assert ran.code == 2, ran

    assert served.stop(signal.SIGTERM) == 0
    log = served.stderr
    assert "INFO counter.incr(by=5) ok" in log
    assert "INFO fail('broken') raised ValueError: broken" in log


def test_serve_stops_cleanly_on_ctrl_c(serve_cli, service_module):
    name, directory = service_module
    served = serve_cli(name, extra_path=directory)
    assert served.stop(signal.SIGINT) == 0
    assert 'Traceback' not in served.stderr


def test_serve_an_object_answers_an_ordinary_client(serve_cli, service_module,
                                                     make_client):
    name, directory = service_module
    served = serve_cli(name + ':Counter', extra_path=directory)   # a class: an instance
    assert served.line('exposing ') == 'exposing incr, inner.where'
    client = make_client(served.server_id, served.endpoint)
    assert client.incr(3).get(timeout=20) == 3
    assert client.inner.where().get(timeout=20) == 'deep'
    assert served.stop() == 0


def test_serve_untrusted_curve_and_call_with_a_login(serve_cli, service_module, tmp_path):
    name, directory = service_module
    served = serve_cli(name, '--security', 'untrusted_curve', '--login', 'erin=pw',
                       extra_path=directory)
    server_key = served.line('server public key ').split()[-1]
    call = ('call', served.endpoint, served.server_id, 'add', '20', '22',
            '--curve-server-key=' + server_key)
    ran = run_cli(tmp_path, *call, '--user', 'erin', '--password', 'pw')
    assert (ran.code, json.loads(ran.out)) == (0, 42), ran
    ran = run_cli(tmp_path, *call, '--user', 'erin', '--password', 'nope',
                  '--timeout', '3')
    assert ran.code == 1, ran                 # the server refused the login
    assert ran.err.startswith('UnauthorizedError'), ran
    assert served.stop() == 0


def test_serve_refuses_what_it_cannot_serve(tmp_path):
    ran = run_cli(tmp_path, 'serve', 'no_such_module_' + unique(), '--bind',
                  'tcp://127.0.0.1:*')
    assert ran.code == 64 and 'cannot import' in ran.err, ran
    (tmp_path / 'empty_mod.py').write_text('X = 1\n')
    ran = run_cli(tmp_path, 'serve', 'empty_mod', '--bind', 'tcp://127.0.0.1:*',
                  extra_path=tmp_path)
    assert ran.code == 64 and 'exposes no callables' in ran.err, ran


def test_help_documents_what_serve_exposes(tmp_path):
    ran = run_cli(tmp_path, 'serve', '--help')
    assert ran.code == 0
    assert '__all__' in ran.out and 'counter.add' in ran.out and 'SIGTERM' in ran.out
    ran = run_cli(tmp_path, '--version')
    assert ran.out.strip() == 'pseud-native %s' % pseud.__version__


# ------------------------------------------------- broker and its workers

ANY = 'tcp://127.0.0.1:*'
WORKER_MODULE = 'import os\n\n\ndef pid():\n    return os.getpid()\n\n\n' \
                'def add(a, b):\n    return a + b\n'


def _pair():
    return [key.decode() for key in pseud.curve_keypair()]


@pytest.fixture
def worker_module(tmp_path):
    name = unique('workermod')
    (tmp_path / (name + '.py')).write_text(WORKER_MODULE)
    return name, tmp_path


def start_broker(start_cli, service, *args):
    """`pseud broker` on free ports: (process, frontend, backend)."""
    broker = start_cli('broker', '--frontend', ANY, '--backend', ANY, '--id', service,
                       *args)
    words = broker.wait_line('pseud broker ').split()
    return (broker, words[words.index('frontend') + 1].rstrip(','),
            words[words.index('backend') + 1])


def curve_worker(serve_cli, module, service, backend, broker_public, pair):
    public, secret = pair
    worker = serve_cli(module[0], '--curve-broker-key=' + broker_public,
                       '--curve-public-key=' + public, '--curve-secret-key=' + secret,
                       extra_path=module[1], server_id=service, where=('--broker', backend))
    assert worker.line('worker public key ') == \
        'worker public key %s (CURVE to the broker)' % public
    return worker


def test_broker_and_worker_with_curve_on_both_sides(start_cli, serve_cli, worker_module,
                                                    tmp_path):
    service = unique('svc')
    (front_public, front_secret), (back_public, back_secret) = _pair(), _pair()
    (client_public, client_secret), worker_pair = _pair(), _pair()
    broker, frontend, backend = start_broker(
        start_cli, service, '--security', 'trusted_curve',
        '--curve-public-key=' + front_public, '--curve-secret-key=' + front_secret,
        '--allow', 'alice=' + client_public,
        '--backend-curve-public-key=' + back_public,
        '--backend-curve-secret-key=' + back_secret,
        '--allow-worker', 'w1=' + worker_pair[0])
    worker = curve_worker(serve_cli, worker_module, service, backend, back_public,
                          worker_pair)
    ran = run_cli(tmp_path, 'call', frontend, service, 'add', '2', '40', '--timeout', '20',
                  '--curve-server-key=' + front_public,
                  '--curve-public-key=' + client_public,
                  '--curve-secret-key=' + client_secret)
    assert (ran.code, ran.out.strip()) == (0, '42'), ran
    ran = run_cli(tmp_path, 'call', frontend, service, 'pid', '--timeout', '20',
                  '--curve-server-key=' + front_public,
                  '--curve-public-key=' + client_public,
                  '--curve-secret-key=' + client_secret)
    assert (ran.code, json.loads(ran.out)) == (0, worker.proc.pid), ran
    assert worker.stop() == 0
    assert broker.stop() == 0


def test_a_worker_whose_key_the_broker_does_not_list_never_gets_a_call(
        start_cli, serve_cli, worker_module, make_client, tmp_path):
    service = unique('svc')
    (back_public, back_secret), good_pair, stranger_pair = _pair(), _pair(), _pair()
    # calls wait in the broker's queue (up to 30 s) for a worker that joins
    broker, frontend, backend = start_broker(
        start_cli, service, '--timeout', '30',
        '--backend-curve-public-key=' + back_public,
        '--backend-curve-secret-key=' + back_secret,
        '--allow-worker', 'good=' + good_pair[0])
    stranger = curve_worker(serve_cli, worker_module, service, backend, back_public,
                            stranger_pair)
    # the stranger is connected and its handshake refused: the call waits
    # in the broker and the client gives up at its own deadline
    ran = run_cli(tmp_path, 'call', frontend, service, 'pid', '--timeout', '1.5')
    assert ran.code == 2, ran
    assert ran.err.strip() == "pseud: no reply to pid from %r at %s within 1.5 s" % (
        service, frontend), ran
    good = curve_worker(serve_cli, worker_module, service, backend, back_public, good_pair)
    client = make_client(service, frontend, timeout=20)
    # the stranger has been up for seconds: had it joined, ties between two
    # idle workers would go round and it would answer every other call
    answers = [client.pid().get() for _ in range(10)]
    assert answers == [good.proc.pid] * 10
    assert stranger.proc.poll() is None          # still running, still refused
    for process in (good, stranger, broker):
        assert process.stop() == 0


@pytest.mark.parametrize('argv, message', [
    (['--curve-broker-key=' + KEYS[0]],
     '--curve-broker-key is for a worker: it needs --broker'),
    (['--broker', 'tcp://127.0.0.1:1', '--curve-broker-key=' + KEYS[0]],
     "--curve-broker-key needs this worker's own pair"),
    (['--broker', 'tcp://127.0.0.1:1', '--curve-broker-key=' + KEYS[0],
      '--curve-public-key=' + KEYS[2]],
     "--curve-broker-key needs this worker's own pair"),
    (['--broker', 'tcp://127.0.0.1:1', '--curve-public-key=' + KEYS[2],
      '--curve-secret-key=' + KEYS[3]],
     "give the broker's key too (--curve-broker-key)"),
    (['--broker', 'tcp://127.0.0.1:1', '--allow', 'u=' + KEYS[0]],
     '--allow/--login go to the broker'),
    (['--broker', 'tcp://127.0.0.1:1', '--curve-broker-key=short'],
     'expected a 40-character Z85 CURVE key'),
])
def test_serve_as_a_worker_usage_errors(argv, message, capsys):
    from pseud.cli import EXIT_USAGE, main
    if '--broker' not in argv:
        argv = ['--bind', ANY] + argv
    with pytest.raises(SystemExit) as exited:
        main(['serve', 'os'] + argv)
    assert exited.value.code == EXIT_USAGE
    assert message in capsys.readouterr().err


@pytest.mark.parametrize('argv, message', [
    (['--backend-curve-public-key=' + KEYS[0], '--backend-curve-secret-key=' + KEYS[1]],
     'at least one --allow-worker'),
    (['--allow-worker', 'w=' + KEYS[2]], 'CURVE on the backend needs'),
    (['--backend-curve-secret-key=' + KEYS[1], '--allow-worker', 'w=' + KEYS[2]],
     'CURVE on the backend needs'),
    (['--backend-curve-public-key=' + KEYS[0], '--backend-curve-secret-key=' + KEYS[1],
      '--allow-worker', 'w=' + KEYS[2], '--allow-worker', 'w=' + KEYS[0]],
     "the name 'w' is given twice"),
    (['--allow-worker', 'w=' + KEYS[2][:-1]], 'expected a 40-character Z85 CURVE key'),
    (['--allow-worker', 'nameonly'], 'expected NAME=KEY'),
])
def test_broker_backend_curve_usage_errors(argv, message, capsys):
    from pseud import _broker_cli
    assert _broker_cli.main(['--frontend', ANY, '--backend', ANY, '--id', 's']
                            + argv) == _broker_cli.EXIT_USAGE
    assert message in capsys.readouterr().err


def test_broker_help_tells_how_to_secure_both_sides(tmp_path):
    ran = run_cli(tmp_path, 'broker', '--help')
    assert ran.code == 0, ran
    text = ' '.join(ran.out.split())
    for option in ('--security', '--allow NAME=KEY', '--backend-curve-public-key',
                   '--backend-curve-secret-key', '--allow-worker NAME=KEY',
                   '--curve-broker-key'):
        assert option in text, option
