"""mprpc 0.1 (msgpack-rpc over plain TCP, Cython core, gevent StreamServer).
Its client is blocking request/response: one call in flight per
connection, so the concurrent scenario gives each greenlet its own."""
from rows import msgpack_compat

msgpack_compat.install()

import gevent.server  # noqa: E402
from mprpc import RPCClient, RPCServer  # noqa: E402

NAME = 'mprpc'
KIND = 'gevent'
NOT_SUPPORTED = {
    'pipelined': 'mprpc has no asynchronous call: one call in flight per connection',
    'send_to': 'mprpc has no server-to-client calls',
}
SHARED_CALLER = False
_keep = []


class _Echo(RPCServer):
    def echo(self, data):
        return data


def _host_port(endpoint):
    host, port = endpoint.split('://', 1)[1].rsplit(':', 1)
    return host, 0 if port == '*' else int(port)


def serve(endpoint, bind):
    server = gevent.server.StreamServer(_host_port(endpoint), _Echo())
    server.start()
    _keep.append(server)
    return 'tcp://%s:%d' % server.address


class Caller:
    def __init__(self, client):
        self.call = lambda payload: client.call('echo', payload)


def connect(endpoint):
    host, port = _host_port(endpoint)
    return Caller(RPCClient(host, port, timeout=30))
