"""The ``pseud`` command line (also ``python -m pseud``): call a method of a
pseud server, or serve the functions of a Python module.

    pseud call ENDPOINT SERVER_ID method.name [ARG...] [--kw NAME=VALUE]...
    pseud serve module[:object] --bind ENDPOINT [--id ID] [-v]
    pseud serve module[:object] --broker ENDPOINT --id ID      (a broker's worker)
    pseud broker --frontend ENDPOINT --backend ENDPOINT --id ID

``pseud <command> --help`` says the rest. Exit codes of ``call``: 0 the
result was printed, 1 the remote side raised (class, message and remote
traceback on stderr), 2 no reply in time, 64 wrong usage.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import json
import logging
import signal
import sys
import time
from typing import Any, Callable, Iterator, NoReturn, Sequence

import pseud
from pseud import _broker_cli
from pseud._cli_keys import curve_key, named_key

log = logging.getLogger('pseud.cli')

EXIT_OK = 0
EXIT_REMOTE_ERROR = 1
EXIT_TIMEOUT = 2
EXIT_USAGE = 64

#: how deep ``serve`` looks into nested objects for methods (``a.b.c.method``)
MAX_DEPTH = 4


# ---- values on the command line and on stdout ------------------------------

def parse_value(text: str) -> Any:
    """An argument as JSON (``3``, ``[1, 2]``, ``"x"``, ``null``), or the text
    itself when it is not JSON (``abc``)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def to_json(value: Any) -> Any:
    """``value`` made of JSON types only: tuples become lists, bytes and
    anything JSON has no type for become their repr (dict keys too)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {key if isinstance(key, str) else repr(key): to_json(item)
                for key, item in value.items()}
    return repr(value)


class UsageError(Exception):
    """Wrong command-line arguments (exit 64)."""


def keyword(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition('=')
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(
            '--kw takes NAME=VALUE with NAME a Python identifier, not %r' % (text,))
    return name, parse_value(value)


def pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition('=')
    if not sep or not name:
        raise argparse.ArgumentTypeError('expected NAME=VALUE, not %r' % (text,))
    return name, value


# ---- pseud call ---------------------------------------------------------------

def client_options(args: argparse.Namespace) -> dict[str, Any]:
    """The Client options of --security, --user, --password and the CURVE keys."""
    curve = args.curve_server_key is not None
    if args.security == 'plain' and curve:
        raise UsageError('--security plain and --curve-server-key exclude each other')
    if args.security == 'plain':
        if args.user is None:
            raise UsageError('--security plain needs --user (and --password)')
        return {'security_plugin': 'plain', 'user_id': args.user,
                'password': args.password or ''}
    if not curve:
        if args.user is not None or args.password is not None:
            raise UsageError('--user/--password need --security plain or '
                             '--curve-server-key')
        if args.curve_public_key or args.curve_secret_key:
            raise UsageError('--curve-public-key/--curve-secret-key need '
                             '--curve-server-key')
        return {}
    if (args.curve_public_key is None) != (args.curve_secret_key is None):
        raise UsageError('give both --curve-public-key and --curve-secret-key, '
                         'or neither (a key pair is then generated)')
    if args.curve_public_key is None:
        public, secret = pseud.curve_keypair()
        log.info('generated client key pair, public key %s', public.decode())
    else:
        public, secret = args.curve_public_key, args.curve_secret_key
    options: dict[str, Any] = {'public_key': public, 'secret_key': secret,
                               'peer_public_key': args.curve_server_key}
    if args.user is not None:
        # an unknown key logs in with HELLO(user, password): untrusted_curve
        options.update(security_plugin='untrusted_curve', user_id=args.user,
                       password=args.password or '')
    else:
        # the server knows this key pair (its known_identities): trusted_curve
        options['security_plugin'] = 'trusted_curve'
    return options


def remote_method(client: pseud.Client, name: str) -> Any:
    target: Any = client
    for part in name.split('.'):
        target = getattr(target, part)
    return target


_TRACEBACK_END = '-- End of remote traceback --'


def describe_remote_error(exc: BaseException) -> str:
    """``Class: message`` then the remote traceback. A rebuilt remote
    exception's text is the framed traceback followed by the message."""
    text = str(exc)
    traceback, sep, message = text.partition(_TRACEBACK_END)
    if not sep:
        return '%s: %s' % (type(exc).__name__, text)
    return '%s: %s\n%s%s' % (type(exc).__name__, message.strip(),
                              traceback.strip('\n'), '\n' + _TRACEBACK_END)


def run_call(args: argparse.Namespace) -> int:
    import gevent

    if not args.method or any(not part for part in args.method.split('.')):
        raise UsageError('method name %r: dotted names of non-empty parts '
                         '(e.g. math.add)' % (args.method,))
    if args.timeout <= 0:
        raise UsageError('--timeout must be positive, not %r' % (args.timeout,))
    call_args = [parse_value(arg) for arg in args.args]
    call_kw = dict(args.kw)
    client = pseud.Client(args.server_id, timeout=args.timeout, **client_options(args))
    try:
        client.connect(args.endpoint)
        log.info('calling %s on %r at %s', args.method, args.server_id, args.endpoint)
        future = remote_method(client, args.method)(*call_args, **call_kw)
        try:
            result = future.get()
        except gevent.Timeout:
            print('pseud: no reply to %s from %r at %s within %g s'
                  % (args.method, args.server_id, args.endpoint, args.timeout),
                  file=sys.stderr)
            return EXIT_TIMEOUT
        except Exception as exc:
            print(describe_remote_error(exc), file=sys.stderr)
            return EXIT_REMOTE_ERROR
    finally:
        client.stop()
    print(json.dumps(to_json(result)))
    return EXIT_OK


# ---- pseud serve --------------------------------------------------------------

def load_target(spec: str) -> Any:
    """``module`` or ``module:object`` (object may be dotted) -> that object;
    a class named after the colon is instantiated without arguments."""
    module_name, _, attr = spec.partition(':')
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError('cannot import %r: %s' % (module_name, exc)) from exc
    if attr:
        for part in attr.split('.'):
            try:
                target = getattr(target, part)
            except AttributeError:
                raise UsageError('%r has no attribute %r' % (spec, part)) from None
        if inspect.isclass(target):
            target = target()
    return target


def _public_names(obj: Any) -> list[str]:
    if inspect.ismodule(obj):
        names = getattr(obj, '__all__', None)
        if names is not None:
            return [name for name in names if isinstance(name, str)]
    return [name for name in dir(obj) if not name.startswith('_')]


def _defined_here(module: Any, value: Any) -> bool:
    return bool(getattr(value, '__module__', None) == module.__name__)


def exposed(target: Any, prefix: str = '', depth: int = 0,
            seen: set[int] | None = None) -> Iterator[tuple[str, Callable[..., Any]]]:
    """(name, callable) of what ``pseud serve`` registers; see SERVE_HELP."""
    seen = set() if seen is None else seen
    if id(target) in seen or depth > MAX_DEPTH:
        return
    seen.add(id(target))
    is_module = inspect.ismodule(target)
    explicit = is_module and hasattr(target, '__all__')
    for name in sorted(_public_names(target)):
        try:
            value = getattr(target, name)
        except AttributeError:
            continue
        if inspect.ismodule(value) or inspect.isclass(value):
            continue
        if is_module and not explicit and not _defined_here(target, value) \
                and inspect.isroutine(value):
            continue   # imported into the module, not its own
        if inspect.isroutine(value):
            yield prefix + name, value
        elif type(value).__module__ not in ('builtins', 'typing') and \
                (not is_module or explicit or _defined_here(target, type(value))):
            yield from exposed(value, prefix + name + '.', depth + 1, seen)


def logged(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            result = func(*args, **kwargs)
        except Exception as exc:
            log.info('%s(%s) raised %s: %s (%.1f ms)', name, _show_args(args, kwargs),
                     type(exc).__name__, exc, (time.perf_counter() - started) * 1e3)
            raise
        log.info('%s(%s) ok (%.1f ms)', name, _show_args(args, kwargs),
                 (time.perf_counter() - started) * 1e3)
        return result
    call.__name__ = name
    return call


def _show_args(args: Sequence[Any], kwargs: dict[str, Any]) -> str:
    shown = [repr(arg) for arg in args] + ['%s=%r' % item for item in kwargs.items()]
    text = ', '.join(shown)
    return text if len(text) <= 200 else text[:197] + '...'


def server_options(args: argparse.Namespace) -> dict[str, Any]:
    """The Server options of a server that binds."""
    if args.curve_broker_key is not None:
        raise UsageError('--curve-broker-key is for a worker: it needs --broker')
    security = args.security
    curve = security in ('trusted_curve', 'untrusted_curve')
    if not curve and (args.curve_public_key or args.curve_secret_key or args.allow):
        raise UsageError('CURVE keys and --allow need --security trusted_curve '
                         'or untrusted_curve')
    if args.login and security != 'untrusted_curve':
        raise UsageError('--login needs --security untrusted_curve')
    if security == 'none':
        return {}
    if not curve:
        return {'security_plugin': security}
    if (args.curve_public_key is None) != (args.curve_secret_key is None):
        raise UsageError('give both --curve-public-key and --curve-secret-key, '
                         'or neither (a key pair is then generated)')
    if args.curve_public_key is None:
        public, secret = pseud.curve_keypair()
    else:
        public, secret = args.curve_public_key, args.curve_secret_key
    return {'security_plugin': security, 'public_key': public, 'secret_key': secret}


def worker_options(args: argparse.Namespace) -> dict[str, Any]:
    """The connect_broker options of a broker's worker (--broker): the
    CURVE link to the broker, or nothing. Clients are the broker's business."""
    if args.security != 'none':
        raise UsageError('--security goes to the broker (pseud broker --security), '
                         'not to its workers')
    if args.allow or args.login:
        raise UsageError('--allow/--login go to the broker (pseud broker --allow), '
                         'not to its workers')
    pair_given = args.curve_public_key is not None or args.curve_secret_key is not None
    if args.curve_broker_key is None:
        if pair_given:
            raise UsageError("with --broker, --curve-public-key/--curve-secret-key are this "
                             "worker's pair for a CURVE link to the broker: give the "
                             "broker's key too (--curve-broker-key)")
        return {}
    if args.curve_public_key is None or args.curve_secret_key is None:
        raise UsageError("--curve-broker-key needs this worker's own pair, "
                         "--curve-public-key and --curve-secret-key, the public key "
                         "being one the broker admits (pseud broker --allow-worker)")
    return {'broker_public_key': args.curve_broker_key,
            'public_key': args.curve_public_key, 'secret_key': args.curve_secret_key}


def run_serve(args: argparse.Namespace) -> int:
    import gevent
    import gevent.event

    link = worker_options(args) if args.broker else {}
    options = {} if args.broker else server_options(args)
    target = load_target(args.target)
    callables = list(exposed(target))
    if not callables:
        raise UsageError('%r exposes no callables (see pseud serve --help)'
                         % (args.target,))
    server = pseud.Server(args.id, **options)
    try:
        backend: Any = server.auth_backend
        for user, key in args.allow:
            backend.known_identities[user.encode()] = key.encode()
        for user, password in args.login:
            backend.user_map[user.encode()] = password.encode()
        for name, func in callables:
            server.register_rpc(logged(name, func) if args.verbose else func, name=name)
        if args.broker:
            for endpoint in args.broker:
                server.connect_broker(endpoint, **link)
            bound = []
        else:
            bound = [server.bind(endpoint) for endpoint in args.bind]
        server.start()
        if server.public_key is not None:
            print('server public key %s' % server.public_key.decode(), flush=True)
        if link:
            print('worker public key %s (CURVE to the broker)' % link['public_key'], flush=True)
        print('exposing %s' % ', '.join(name for name, _ in callables), flush=True)
        for endpoint in bound:
            print('serving %r on %s' % (args.id, endpoint), flush=True)
        for endpoint in args.broker or ():
            print('serving %r through the broker at %s' % (args.id, endpoint), flush=True)
        done = gevent.event.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            gevent.signal_handler(signum, done.set)
        done.wait()
        log.info('stopping')
    finally:
        server.stop()
    return EXIT_OK


# ---- the parser -----------------------------------------------------------------

CALL_HELP = """\
Call METHOD on the pseud server SERVER_ID at ENDPOINT and print the result.

Each ARG and each --kw VALUE is read as JSON (3, 2.5, true, null, "text",
[1, 2], {"a": 1}); one that is not valid JSON is passed as a string (abc).
The result is printed as one line of JSON; bytes and values JSON has no
type for are printed as their Python repr (as JSON strings).

exit status: 0 result printed, 1 the remote call raised (its class,
message and remote traceback go to stderr), 2 no reply within --timeout,
64 wrong usage.

security: --security plain --user U --password P logs in with PLAIN.
--curve-server-key KEY (the server's Z85 public key) uses CURVE: with
--curve-public-key/--curve-secret-key (a pair the server knows,
trusted_curve), or a generated pair plus --user/--password to log in with
(untrusted_curve). Give keys as --curve-server-key=KEY: a Z85 key may
begin with '-'.
"""

SERVE_HELP = """\
Serve the callables of a Python module, or of an object in it, until
Ctrl-C or SIGTERM (then stop cleanly). TARGET is `module` or
`module:object` (object may be dotted: `module:a.b`; a class is
instantiated with no arguments). The module is imported as by `import`,
so the current directory and PYTHONPATH are searched.

What is exposed, by name:
  * a module: the names of its __all__ if it has one, else its public
    names (no leading underscore) defined in the module itself (functions
    imported from elsewhere are not exposed);
  * an object: its public attributes (dir());
  * of those, functions, methods and builtins are exposed under their name;
    classes and modules are not; any other object that is an instance of a
    non-builtin class (of a class defined in the module, for a module
    without __all__) is searched the same way, its callables exposed under
    dotted names: `counter.add` for the method add of the instance
    `counter`, up to %d levels deep.
Each --bind endpoint is printed once bound (`--bind tcp://127.0.0.1:*`
picks a free port); -v logs each call at INFO on stderr.

security: --security plain (login == password), trusted_peer,
trusted_curve (clients whose keys are given with --allow USER=PUBLICKEY),
untrusted_curve (unknown keys log in with --login USER=PASSWORD). CURVE
servers use --curve-public-key/--curve-secret-key or a generated pair; the
public key is printed. Give keys as --curve-public-key=KEY: a Z85 key may
begin with '-'.

as a broker's worker (--broker ENDPOINT, see pseud broker --help): the
broker admits the clients, so --security, --allow and --login are not
for workers. --curve-broker-key=KEY (the broker's backend public key)
makes the link to the broker CURVE, with this worker's own pair given as
--curve-public-key/--curve-secret-key; the broker admits that public key
with --allow-worker NAME=KEY.
""" % (MAX_DEPTH,)


BROKER_HELP = """\
Run a load-balancing broker: clients connect to --frontend exactly as to a
server whose id is --id; workers (`pseud serve TARGET --broker BACKEND --id
ID`, or Server(ID).connect_broker(BACKEND)) connect to --backend. Each call
goes to the worker with the fewest calls in flight; calls wait (bounded by
--max-queue and --timeout) while none is free. Runs until Ctrl-C or
SIGTERM. See docs/guide/scaling.rst.

security: at the frontend, as on a server: --security plain (login ==
password), trusted_peer (any login), or trusted_curve with the broker's
--curve-public-key/--curve-secret-key and the clients' keys
(--allow NAME=KEY); the caller's user id reaches the worker. On the
backend, without more, any peer that connects becomes a worker: bind it
where only your workers reach, or make it CURVE with
--backend-curve-public-key/--backend-curve-secret-key and one
--allow-worker NAME=KEY per worker key; each worker then runs
`pseud serve TARGET --broker BACKEND --id ID --curve-broker-key=BACKEND_PUBLIC
--curve-public-key=ITS_PUBLIC --curve-secret-key=ITS_SECRET`. A worker
whose key is not listed never joins. Keys are Z85 text
(pseud.curve_keypair()); give them as --option=KEY, since a Z85 key may
begin with '-'.
"""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, '%s: error: %s\n' % (self.prog, message))


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog='pseud', description='Call or serve pseud RPC from the '
                    'command line (pseud-native %s).' % pseud.__version__)
    parser.add_argument('--version', action='version',
                        version='pseud-native %s' % pseud.__version__)
    commands = parser.add_subparsers(dest='command', metavar='COMMAND',
                                     parser_class=Parser)
    commands.required = True

    call = commands.add_parser(
        'call', help='call a method of a pseud server', description=CALL_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    call.add_argument('endpoint', metavar='ENDPOINT', help='e.g. tcp://127.0.0.1:5555')
    call.add_argument('server_id', metavar='SERVER_ID', help="the server's user_id")
    call.add_argument('method', metavar='METHOD', help='e.g. lower or math.add')
    call.add_argument('args', metavar='ARG', nargs='*', help='positional arguments')
    call.add_argument('--kw', metavar='NAME=VALUE', action='append', default=[],
                      type=keyword, help='a keyword argument (repeatable)')
    call.add_argument('--timeout', type=float, default=5.0, metavar='S',
                      help='seconds to wait for the reply (default 5)')
    call.add_argument('--security', choices=('none', 'plain'), default='none')
    call.add_argument('--user', help='login (PLAIN, or untrusted_curve HELLO)')
    call.add_argument('--password', help='password for --user')
    call.add_argument('--curve-server-key', metavar='KEY', type=curve_key,
                      help="the server's Z85 public key")
    call.add_argument('--curve-public-key', metavar='KEY', type=curve_key,
                      help='this client\'s Z85 public key')
    call.add_argument('--curve-secret-key', metavar='KEY', type=curve_key,
                      help='this client\'s Z85 secret key')
    call.add_argument('-v', '--verbose', action='store_true', help='log at INFO on stderr')
    call.set_defaults(run=run_call)

    serve = commands.add_parser(
        'serve', help='serve the callables of a module', description=SERVE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument('target', metavar='TARGET', help='module or module:object')
    where = serve.add_mutually_exclusive_group(required=True)
    where.add_argument('--bind', action='append', metavar='ENDPOINT',
                       help='e.g. tcp://*:5555 or tcp://127.0.0.1:* (repeatable)')
    where.add_argument('--broker', action='append', metavar='ENDPOINT',
                       help="serve as a worker of the broker whose backend is at ENDPOINT "
                       "(pseud broker; --id is the service's id)")
    serve.add_argument('--id', default='pseud', help="the server's user_id "
                       "(the SERVER_ID clients call; default 'pseud')")
    serve.add_argument('--security', default='none',
                       choices=('none', 'plain', 'trusted_peer', 'trusted_curve',
                                'untrusted_curve'))
    serve.add_argument('--curve-public-key', metavar='KEY', type=curve_key,
                       help="this server's (or worker's) Z85 public key")
    serve.add_argument('--curve-secret-key', metavar='KEY', type=curve_key,
                       help="this server's (or worker's) Z85 secret key")
    serve.add_argument('--curve-broker-key', metavar='KEY', type=curve_key,
                       help="with --broker: the broker's backend Z85 public key; the "
                       "link to the broker is then CURVE (this worker's pair: "
                       "--curve-public-key/--curve-secret-key)")
    serve.add_argument('--allow', metavar='USER=PUBLICKEY', action='append',
                       default=[], type=named_key,
                       help='trusted_curve: admit this client key as USER (repeatable)')
    serve.add_argument('--login', metavar='USER=PASSWORD', action='append',
                       default=[], type=pair,
                       help='untrusted_curve: a login clients may HELLO with (repeatable)')
    serve.add_argument('-v', '--verbose', action='store_true',
                       help='log each call at INFO on stderr')
    serve.set_defaults(run=run_serve)

    broker = commands.add_parser(
        'broker', help='run a load-balancing broker for a service',
        description=BROKER_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    _broker_cli.build_parser(broker)
    broker.set_defaults(run=_broker_cli.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format='%(asctime)s %(name)s %(levelname)s %(message)s',
                        stream=sys.stderr)
    try:
        code: int = args.run(args)
    except UsageError as exc:
        parser.exit(EXIT_USAGE, 'pseud %s: error: %s\n' % (args.command, exc))
    return code


if __name__ == '__main__':
    sys.exit(main())
