"""Upstream pseud 1.0.1 as a test peer, in a process of its own.

Run with the interop environment's python (PSEUD_INTEROP_PYTHON, made by
scripts/setup-env.sh), never with the project's: both packages are named
`pseud`. Talks to the test through stdout, one JSON object a line.

    upstream_peer.py server [--user-id ID] [--options JSON]
        binds tcp://127.0.0.1:* and prints {"endpoint": ...}; then serves
        until killed.
    upstream_peer.py client ENDPOINT PEER_ID [--identity ID] [--concurrent] [--sync]
                     [--serve-for SECONDS] [--options JSON]   < calls.json
        calls.json: [{"name": ..., "args": B64, "kwargs": B64}, ...] where
        B64 is a base64 pickle (bytes, datetimes and tuples do not fit in
        JSON); prints {"results": [...]}, one entry a call, then, with
        --serve-for, {"serving": true} and keeps answering calls from the
        server for that long.

A result entry is {"ok": B64, "repr": ...} or {"error": class name,
"message": str(exc), "repr": repr(exc)}. Pickles only cross between this
process and its own test: nothing here is reachable from the network.

--options is a JSON object of extra keyword arguments for upstream's
Server/Client (security_plugin, password, timeout, ...); strings prefixed
"b:" are passed as bytes. --plugin-module imports a module first (upstream
1.0.1 ships only the noop security backend: other backends have to be
defined by the peer).
"""
import argparse
import asyncio
import base64
import datetime
import importlib
import json
import pickle
import sys

# --- shims: upstream 1.0.1 (2018) against current pyzmq and msgpack -------
import msgpack
import zmq
import zmq.asyncio

if not hasattr(zmq.asyncio, 'install'):
    # pyzmq dropped install(); asyncio's loop needs no patching any more
    zmq.asyncio.install = lambda: None

_orig_packb = msgpack.packb
_orig_unpackb = msgpack.unpackb


def _packb(obj, encoding=None, **kwargs):
    # msgpack 1.0 removed encoding=; str is always packed as utf-8 now
    return _orig_packb(obj, **kwargs)


def _unpackb(data, encoding=None, **kwargs):
    # encoding='utf-8' meant: str payloads come back as str, i.e. raw=False
    if encoding is not None:
        kwargs.setdefault('raw', False)
    return _orig_unpackb(data, **kwargs)


msgpack.packb = _packb
msgpack.unpackb = _unpackb

import pseud  # noqa: E402  (upstream's, after the shims)
from pseud.utils import register_rpc  # noqa: E402


def emit(obj):
    sys.stdout.write(json.dumps(obj) + '\n')
    sys.stdout.flush()


def dump(value):
    return base64.b64encode(pickle.dumps(value)).decode('ascii')


def load(text):
    return pickle.loads(base64.b64decode(text))


def identity(text):
    return text.encode('utf-8') if text is not None else None


def options(text):
    opts = json.loads(text) if text else {}
    return {key: (val[2:].encode('utf-8')
                  if isinstance(val, str) and val.startswith('b:') else val)
            for key, val in opts.items()}


def outcome(coro_result=None, exc=None):
    if exc is None:
        return {'ok': dump(coro_result), 'repr': repr(coro_result)}
    return {'error': type(exc).__name__, 'message': str(exc), 'repr': repr(exc)}


# --- what both roles serve ------------------------------------------------

def register_common(rpc):
    reg = rpc.register_rpc

    reg(name='string.upper')(str.upper)

    @reg(name='echo')
    def echo(*args, **kwargs):
        return args, kwargs

    @reg(name='types')
    def types(*args, **kwargs):
        # how upstream decoded what it was sent
        return ([type(a).__name__ for a in args],
                {k: type(v).__name__ for k, v in kwargs.items()})

    @reg(name='fail')
    def fail(message='upstream says no'):
        raise ValueError(message)

    @reg(name='add_days')
    def add_days(when, n):
        return when + datetime.timedelta(days=n)

    @reg(name='big')
    def big(size):
        return b'x' * size

    @reg(name='length')
    def length(data):
        return len(data)

    @reg(name='whoami', with_identity=True)
    def whoami(user_id):
        return user_id


# --- server ----------------------------------------------------------------

def record_routing_ids(server):
    """Note the routing id of each six-frame message upstream's server reads.
    Under noop security upstream cannot learn who called (no ZAP: user id
    b'', and register_routing_id does nothing); this is the test's own way
    to address a client back through upstream's send_to, whose noop
    get_routing_id takes the id given as the routing id. (An instance
    attribute: upstream's start() reads self.on_socket_ready; a subclass
    would lose zope's interface declaration to upstream's __getattr__.)"""
    read = server.on_socket_ready

    async def on_socket_ready(response):
        if len(response) == 6:
            server.last_routing_id = bytes(response[0])
        return await read(response)

    server.last_routing_id = None
    server.on_socket_ready = on_socket_ready


async def run_server(args):
    loop = asyncio.get_event_loop()
    server = pseud.Server(identity(args.user_id), loop=loop, **options(args.options))
    record_routing_ids(server)
    server.bind('tcp://127.0.0.1:*')
    endpoint = server.socket.getsockopt(zmq.LAST_ENDPOINT).decode('ascii')
    register_common(server)
    callbacks = []

    @server.register_rpc(name='call_back')
    def call_back(name, *call_args):
        # Upstream awaits each WORK handler inside its only reader task: a
        # handler awaiting a call of its own would wait for a reply that
        # reader can never read (deadlock until timeout). So the call back
        # runs as a task of its own; its outcome is fetched with
        # callback_results().
        routing_id = server.last_routing_id

        async def do():
            try:
                value = await server.send_work(routing_id, name, *call_args)
            except Exception as exc:
                callbacks.append(outcome(exc=exc))
            else:
                callbacks.append(outcome(value))
        asyncio.ensure_future(do())
        return True

    @server.register_rpc(name='callback_results')
    def callback_results():
        return list(callbacks)

    async with server:
        emit({'endpoint': endpoint})
        await asyncio.Event().wait()     # until killed


# --- client ----------------------------------------------------------------

def sync_one(client, peer_id, call):
    try:
        value = client.send_work(identity(peer_id), call['name'],
                                 *load(call['args']), **load(call['kwargs']))
    except Exception as exc:
        return outcome(exc=exc)
    return outcome(value)


def run_sync_client(args, loop):
    # upstream's SyncClient: a REQ socket, blocking, one call at a time; it
    # runs the loop itself for each reply, so the loop must not be running
    calls = json.load(sys.stdin)
    client = pseud.SyncClient(peer_routing_id=identity(args.peer_id), loop=loop,
                              **options(args.options))
    client.connect(args.endpoint)
    emit({'results': [sync_one(client, args.peer_id, c) for c in calls]})
    client.stop()


async def run_client(args):
    loop = asyncio.get_event_loop()
    calls = json.load(sys.stdin)
    client = pseud.Client(identity(args.peer_id), loop=loop, **options(args.options))
    if args.identity is not None:
        # upstream refuses routing_id=; a security plugin would map a user id
        # to the routing id, noop cannot. Give the socket a fixed one before
        # upstream sets it up so that the server can send_to() it.
        client.socket = client.context.socket(zmq.ROUTER)
        client.socket.setsockopt(zmq.IDENTITY, identity(args.identity))
    register_common(client)
    client.register_rpc(name='client.hello')(lambda who: 'hello %s from upstream client' % who)
    client.connect(args.endpoint)

    async def one(call):
        try:
            value = await client.send_work(identity(args.peer_id), call['name'],
                                           *load(call['args']), **load(call['kwargs']))
        except Exception as exc:
            return outcome(exc=exc)
        return outcome(value)

    async with client:
        if args.concurrent:
            results = await asyncio.gather(*(one(c) for c in calls))
        else:
            results = [await one(c) for c in calls]
        emit({'results': list(results)})
        if args.serve_for:
            emit({'serving': True})
            await asyncio.sleep(args.serve_for)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest='role', required=True)
    srv = sub.add_parser('server')
    srv.add_argument('--user-id', default='upstream')
    cli = sub.add_parser('client')
    cli.add_argument('endpoint')
    cli.add_argument('peer_id')
    cli.add_argument('--identity')
    cli.add_argument('--concurrent', action='store_true')
    cli.add_argument('--sync', action='store_true', help="upstream's SyncClient")
    cli.add_argument('--serve-for', type=float, default=0)
    for p in (srv, cli):
        p.add_argument('--options')
        p.add_argument('--plugin-module')
    args = parser.parse_args()
    if args.plugin_module:
        importlib.import_module(args.plugin_module)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    if args.role == 'client' and args.sync:
        run_sync_client(args, loop)
        return
    run = run_server if args.role == 'server' else run_client
    loop.run_until_complete(run(args))


if __name__ == '__main__':
    main()
