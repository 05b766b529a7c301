"""zerorpc 0.6 (gevent + msgpack over ZeroMQ, its own protocol)."""
import gevent
import zerorpc
import zmq

NAME = 'zerorpc'
KIND = 'gevent'
NOT_SUPPORTED = {'send_to': 'zerorpc has no server-to-client calls'}
SHARED_CALLER = True
_keep = []


class _Echo:
    def echo(self, data):
        return data


def _last_endpoint(rpc):
    return rpc._events._socket.getsockopt(zmq.LAST_ENDPOINT).decode()


def serve(endpoint, bind):
    server = zerorpc.Server(_Echo(), heartbeat=None)
    server.bind(endpoint) if bind else server.connect(endpoint)
    gevent.spawn(server.run)
    _keep.append(server)
    return _last_endpoint(server) if bind else endpoint


class Caller:
    def __init__(self, client):
        self.client = client

    def call_async(self, payload):
        return self.client('echo', payload, **{'async': True})

    def call(self, payload):
        return self.client('echo', payload)


def connect(endpoint):
    client = zerorpc.Client(timeout=30, heartbeat=None)
    client.connect(endpoint)
    return Caller(client)
