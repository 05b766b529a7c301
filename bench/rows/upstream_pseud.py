"""pseud 1.0.1 from PyPI (asyncio), run unchanged with two shims applied
before its import, because it predates the pyzmq and msgpack it gets
installed with today: pyzmq removed ``zmq.asyncio.install`` (asyncio
support needs no installing any more, so the shim does nothing), and
msgpack 1.0 removed the ``encoding=`` argument pseud 1.0.1 passes (the
shim in rows/msgpack_compat.py drops it, ``encoding='utf-8'`` becoming
``raw=False``).

send_to: like pseud-native, the called peer is a Server (user id b'bench')
connecting to the caller, a Server that binds and calls send_to(b'bench')."""
import asyncio

import zmq
import zmq.asyncio

from rows import msgpack_compat

if not hasattr(zmq.asyncio, 'install'):
    zmq.asyncio.install = lambda: None     # nothing to install any more
msgpack_compat.install()

import pseud  # noqa: E402

NAME = 'pseud-1.0.1'
KIND = 'asyncio'
NOT_SUPPORTED = {}
SHARED_CALLER = True
TIMEOUT = 30
_keep = []


def _echo(data):
    return data


def _resolved(rpc, endpoint):
    return rpc.socket.getsockopt(zmq.LAST_ENDPOINT).decode() if '*' in endpoint else endpoint


async def serve(endpoint, bind):
    server = pseud.Server(b'bench', loop=asyncio.get_event_loop(), timeout=TIMEOUT)
    server.register_rpc(name='echo')(_echo)
    server.bind(endpoint) if bind else server.connect(endpoint)
    await server.start()
    _keep.append(server)
    return _resolved(server, endpoint) if bind else endpoint


class Caller:
    def __init__(self, rpc, target):
        self.rpc = rpc
        self.echo = target.echo

    def call(self, payload):
        return self.echo(payload)


async def connect(endpoint):
    client = pseud.Client(b'bench', loop=asyncio.get_event_loop(), timeout=TIMEOUT)
    client.connect(endpoint)
    await client.start()
    return Caller(client, client)


async def reverse_caller(endpoint):
    server = pseud.Server(b'caller', loop=asyncio.get_event_loop(), timeout=TIMEOUT)
    server.bind(endpoint)
    await server.start()
    return _resolved(server, endpoint), Caller(server, server.send_to(b'bench'))
