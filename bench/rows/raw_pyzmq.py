"""raw-pyzmq-gevent: green ROUTER sockets doing pseud's six-frame exchange
with msgpack bodies, a dict of AsyncResults and one reader greenlet; no RPC
layer. The responder's routing id is b'bench'."""
import itertools

import gevent
import gevent.event
import zmq.green as zmq

from rows import six_frames

NAME = 'raw-pyzmq-gevent'
KIND = 'gevent'
NOT_SUPPORTED = {}
SHARED_CALLER = True
RESPONDER_ID = b'bench'

def _router(identity=None):
    sock = zmq.Context.instance().socket(zmq.ROUTER)   # created after any fork
    if identity:
        sock.setsockopt(zmq.IDENTITY, identity)
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
    sock.setsockopt(zmq.LINGER, 0)
    return sock


def _attach(sock, endpoint, bind):
    if bind:
        sock.bind(endpoint)
        return sock.getsockopt_string(zmq.LAST_ENDPOINT)
    sock.connect(endpoint)
    return endpoint


def serve(endpoint, bind):
    sock = _router(RESPONDER_ID)
    endpoint = _attach(sock, endpoint, bind)

    def loop():
        while True:
            reply = six_frames.reply_to(sock.recv_multipart())
            if reply is not None:
                sock.send_multipart(reply)
    gevent.spawn(loop)
    return endpoint


class Caller:
    def __init__(self, sock):
        self.sock = sock
        self.pending = {}
        self.ids = itertools.count(1)
        self.reader = gevent.spawn(self._read)

    def _read(self):
        while True:
            uuid, value = six_frames.result(self.sock.recv_multipart())
            future = self.pending.pop(uuid, None)
            if future is not None:
                future.set(value)

    def call_async(self, payload):
        uuid = next(self.ids).to_bytes(16, 'big')
        future = self.pending[uuid] = gevent.event.AsyncResult()
        try:
            self.sock.send_multipart(six_frames.work(RESPONDER_ID, uuid, payload))
        except zmq.ZMQError:      # not routable yet (warm-up retries)
            del self.pending[uuid]
            raise
        return future

    def call(self, payload):
        return self.call_async(payload).get(timeout=30)


def connect(endpoint):
    sock = _router()
    _attach(sock, endpoint, bind=False)
    return Caller(sock)


def reverse_caller(endpoint):
    sock = _router()
    endpoint = _attach(sock, endpoint, bind=True)
    return endpoint, Caller(sock)
