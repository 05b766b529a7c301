"""``pseud broker``: run a load-balancing broker (docs/guide/scaling.rst).

    pseud broker --frontend tcp://*:5555 --backend tcp://*:5556 --id svc
                 [--max-in-flight 64] [--max-queue 1000] [--timeout 5]
                 [--security plain|trusted_peer|trusted_curve]
                 [--curve-public-key=K --curve-secret-key=K] [--allow NAME=KEY]...
                 [--backend-curve-public-key=K --backend-curve-secret-key=K
                  --allow-worker NAME=KEY...] [-v]

Clients connect to the frontend as to ``Server('svc')``; workers are
``Server('svc')`` objects that call ``connect_broker(backend)`` (or
``pseud serve module --broker tcp://host:5556 --id svc``). Runs until
SIGINT/SIGTERM. ``pseud broker`` (pseud/cli.py) uses build_parser and run;
``main(argv)`` is the same on its own. Exit code 0, or 64 for wrong usage.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any, Sequence

import pseud
from pseud._cli_keys import curve_key, named_key
from pseud.broker import DEFAULT_MAX_IN_FLIGHT

EXIT_USAGE = 64

log = logging.getLogger('pseud.broker')


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The broker's arguments, on `parser` (a subcommand's) or a new one."""
    if parser is None:
        parser = argparse.ArgumentParser(prog='pseud broker', description=__doc__.split('\n')[0])
    parser.add_argument('--frontend', required=True, action='append',
                        help='endpoint(s) to bind for clients (repeatable)')
    parser.add_argument('--backend', required=True, action='append',
                        help='endpoint(s) to bind for workers (repeatable)')
    parser.add_argument('--id', required=True, dest='service_id',
                        help="the service id clients address (Server('svc'))")
    parser.add_argument('--max-in-flight', type=int, default=DEFAULT_MAX_IN_FLIGHT,
                        help='calls one worker runs at once (default %d)'
                        % DEFAULT_MAX_IN_FLIGHT)
    parser.add_argument('--max-queue', type=int, default=1000,
                        help='calls that may wait for a free worker (default 1000)')
    parser.add_argument('--timeout', type=float, default=5.0,
                        help='seconds a call may wait in the queue (default 5)')
    parser.add_argument('-v', '--verbose', action='store_true', help='log at INFO')
    front = parser.add_argument_group('security at the frontend (clients)')
    front.add_argument('--security', choices=['plain', 'trusted_peer', 'trusted_curve'],
                       help='security plugin at the frontend')
    front.add_argument('--curve-public-key', metavar='KEY', type=curve_key,
                       help="trusted_curve: the broker's frontend CURVE public key (Z85)")
    front.add_argument('--curve-secret-key', metavar='KEY', type=curve_key,
                       help="trusted_curve: the broker's frontend CURVE secret key (Z85)")
    front.add_argument('--allow', action='append', default=[], metavar='NAME=KEY',
                       type=named_key,
                       help='trusted_curve: admit client public KEY (Z85) as user NAME '
                       '(repeatable)')
    back = parser.add_argument_group(
        'CURVE between the broker and its workers (all three, or none: then the '
        'backend admits any peer that connects)')
    back.add_argument('--backend-curve-public-key', metavar='KEY', type=curve_key,
                      help="the broker's backend CURVE public key (Z85): workers give it "
                      'as pseud serve --curve-broker-key')
    back.add_argument('--backend-curve-secret-key', metavar='KEY', type=curve_key,
                      help="the broker's backend CURVE secret key (Z85)")
    back.add_argument('--allow-worker', action='append', default=[], metavar='NAME=KEY',
                      type=named_key,
                      help="admit the worker whose public KEY (Z85; pseud serve "
                      "--curve-public-key) is given, under NAME (repeatable); a worker "
                      'with any other key never joins')
    return parser


def _backend_options(args: argparse.Namespace) -> dict[str, Any]:
    """Broker options of the backend's CURVE arguments ({} without them)."""
    public, secret = args.backend_curve_public_key, args.backend_curve_secret_key
    if public is None and secret is None and not args.allow_worker:
        return {}
    if public is None or secret is None or not args.allow_worker:
        raise ValueError('CURVE on the backend needs --backend-curve-public-key, '
                         '--backend-curve-secret-key and at least one --allow-worker '
                         'NAME=KEY (make pairs with pseud.curve_keypair())')
    workers: dict[bytes, bytes] = {}
    for name, key in args.allow_worker:
        if name.encode() in workers:
            raise ValueError('--allow-worker %s=...: the name %r is given twice'
                             % (name, name))
        workers[name.encode()] = key.encode()
    return {'worker_keys': workers, 'backend_public_key': public,
            'backend_secret_key': secret}


def broker_from_args(args: argparse.Namespace) -> pseud.Broker:
    """A started-able pseud.Broker from parsed arguments; ValueError on misuse."""
    options: dict[str, Any] = {'max_in_flight': args.max_in_flight, 'max_queue': args.max_queue,
               'timeout': args.timeout}
    curve = args.security == 'trusted_curve'
    if (args.curve_public_key or args.curve_secret_key or args.allow) and not curve:
        raise ValueError('--curve-*/--allow need --security trusted_curve')
    if curve:
        if not (args.curve_public_key and args.curve_secret_key):
            raise ValueError('--security trusted_curve needs --curve-public-key and '
                             '--curve-secret-key (make a pair with pseud.curve_keypair())')
        options.update(public_key=args.curve_public_key, secret_key=args.curve_secret_key)
    if args.security:
        options['security_plugin'] = args.security
    options.update(_backend_options(args))
    allowed = {name.encode(): key.encode() for name, key in args.allow}
    broker = pseud.Broker(args.service_id, **options)
    try:
        if curve:
            # only the keys given here: not the two generated example identities
            broker.auth_backend.known_identities.clear()
            broker.auth_backend.known_identities.update(allowed)
        for endpoint in args.frontend:
            log.info('frontend %s', broker.bind_frontend(endpoint))
        for endpoint in args.backend:
            log.info('backend %s', broker.bind_backend(endpoint))
        if 'worker_keys' in options:
            log.info('backend: CURVE, workers %s',
                     ', '.join(name for name, _ in args.allow_worker))
    except BaseException:
        broker.stop()
        raise
    return broker


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pseud._broker_cli ARGS``: the same as ``pseud broker ARGS``."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else 0
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format='%(asctime)s %(name)s %(levelname)s %(message)s')
    return run(args)


def run(args: argparse.Namespace) -> int:
    """Run the broker of parsed arguments until SIGINT/SIGTERM; the exit code."""
    try:
        broker = broker_from_args(args)
    except (ValueError, TypeError, pseud._pseud.ZMQError) as exc:
        print('pseud broker: %s' % (exc,), file=sys.stderr)
        return EXIT_USAGE
    import gevent
    gevent.signal_handler(signal.SIGTERM, broker.stop)
    gevent.signal_handler(signal.SIGINT, broker.stop)
    print('pseud broker %r: frontend %s, backend %s' % (
        args.service_id, broker.frontend_endpoint, broker.backend_endpoint), flush=True)
    broker.run()
    return 0


if __name__ == '__main__':
    sys.exit(main())
