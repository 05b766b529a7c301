"""First figures: pseud-native next to raw pyzmq + gevent doing the same
six-frame exchange, over tcp loopback, server in another process.

    python bench/bench_calls.py [--seconds S] [--repeat N] [--json FILE]

Scenarios: sequential (one call in flight) and pipelined (100 in flight),
30-byte bytes payload echoed back. Rows run interleaved, repetition by
repetition, so that both see the same machine; compare the ratios only.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

PAYLOAD = b'x' * 30
IN_FLIGHT = 100


# ------------------------------------------------------------------ servers

def serve_pseud():
    import gevent
    import pseud
    server = pseud.Server(b'bench')
    endpoint = server.bind('tcp://127.0.0.1:*')
    server.register_rpc(name='echo')(lambda data: data)
    server.start()
    print(endpoint, flush=True)
    gevent.wait()


def serve_pyzmq():
    import msgpack
    import zmq.green as zmq
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.IDENTITY, b'bench')
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
    port = sock.bind_to_random_port('tcp://127.0.0.1')
    print('tcp://127.0.0.1:%d' % port, flush=True)
    while True:
        rid, empty, version, uuid, kind, body = sock.recv_multipart()
        if kind != b'\x03':
            continue    # the client's connection probe
        name, args, kwargs = msgpack.unpackb(body)
        sock.send_multipart([rid, empty, version, uuid, b'\x01',
                             msgpack.packb(args[0])])


# ------------------------------------------------------------------ clients

class PseudClient:
    def __init__(self, endpoint):
        import pseud
        self.client = pseud.Client(b'bench', timeout=30)
        self.client.connect(endpoint)
        self.echo = self.client.echo

    def call(self):
        return self.echo(PAYLOAD)

    def close(self):
        self.client.stop()


class PyzmqClient:
    """A minimal RPC client over a green ROUTER socket: futures in a dict,
    one reader greenlet."""

    def __init__(self, endpoint):
        import gevent
        import gevent.event
        import msgpack
        import zmq.green as zmq
        self.msgpack = msgpack
        self.AsyncResult = gevent.event.AsyncResult
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.sock.connect(endpoint)
        self.pending = {}
        self.counter = 0
        while True:   # wait until the server is routable
            try:
                self.sock.send_multipart([b'bench', b'', b'v1', b'', b'\x06', b''])
                break
            except zmq.ZMQError:
                gevent.sleep(0.01)
        self.reader = gevent.spawn(self._read)

    def _read(self):
        while True:
            rid, empty, version, uuid, kind, body = self.sock.recv_multipart()
            future = self.pending.pop(uuid, None)
            if future is not None:
                future.set(self.msgpack.unpackb(body))

    def call(self):
        self.counter += 1
        uuid = self.counter.to_bytes(16, 'big')
        future = self.pending[uuid] = self.AsyncResult()
        self.sock.send_multipart([b'bench', b'', b'v1', uuid, b'\x03',
                                  self.msgpack.packb(('echo', (PAYLOAD,), {}))])
        return future

    def close(self):
        self.reader.kill()
        self.sock.close(linger=0)


def measure(client, mode, seconds):
    import gevent
    calls = 0
    start = time.perf_counter()
    deadline = start + seconds
    if mode == 'sequential':
        while time.perf_counter() < deadline:
            for _ in range(100):
                assert client.call().get() == PAYLOAD
            calls += 100
    else:
        while time.perf_counter() < deadline:
            futures = [client.call() for _ in range(IN_FLIGHT)]
            gevent.wait(futures)
            for f in futures:
                assert f.get() == PAYLOAD
            calls += IN_FLIGHT
    return calls / (time.perf_counter() - start)


def run_client(row, endpoint, mode, seconds):
    client = (PseudClient if row == 'pseud-native' else PyzmqClient)(endpoint)
    try:
        client.call().get()          # connected and warm
        rate = measure(client, mode, seconds)
    finally:
        client.close()
    usage = os.times()
    print(json.dumps({'rate': rate, 'cpu': usage.user + usage.system}), flush=True)


# ------------------------------------------------------------------ driver

ROWS = ('raw-pyzmq-gevent', 'pseud-native')
MODES = ('sequential', 'pipelined')


def one_run(row, mode, seconds):
    me = os.path.abspath(__file__)
    server = subprocess.Popen([sys.executable, me, '--serve', row],
                              stdout=subprocess.PIPE, text=True)
    try:
        endpoint = server.stdout.readline().strip()
        out = subprocess.run([sys.executable, me, '--client', row, endpoint, mode,
                              str(seconds)], capture_output=True, text=True,
                             timeout=seconds * 10 + 30)
        if out.returncode != 0:
            raise RuntimeError('%s %s failed:\n%s' % (row, mode, out.stderr))
        return json.loads(out.stdout.strip().splitlines()[-1])['rate']
    finally:
        server.kill()
        server.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=2.0)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--json', default=None)
    parser.add_argument('--serve', default=None)
    parser.add_argument('--client', nargs=4, default=None)
    args = parser.parse_args()
    if args.serve:
        return serve_pseud() if args.serve == 'pseud-native' else serve_pyzmq()
    if args.client:
        row, endpoint, mode, seconds = args.client
        return run_client(row, endpoint, mode, float(seconds))

    rates = {(row, mode): [] for row in ROWS for mode in MODES}
    for _ in range(args.repeat):
        for mode in MODES:
            for row in ROWS:
                rates[row, mode].append(one_run(row, mode, args.seconds))
    results = {}
    print('%-18s %-11s %12s %10s' % ('row', 'scenario', 'calls/s', 'spread'))
    for mode in MODES:
        for row in ROWS:
            values = rates[row, mode]
            med = statistics.median(values)
            spread = (max(values) - min(values)) / med if med else 0
            results.setdefault(mode, {})[row] = {'median': med, 'runs': values}
            print('%-18s %-11s %12.0f %9.0f%%' % (row, mode, med, spread * 100))
        ratio = (results[mode]['pseud-native']['median']
                 / results[mode]['raw-pyzmq-gevent']['median'])
        results[mode]['ratio_native_over_pyzmq'] = ratio
        print('%-18s %-11s %12.2fx' % ('native/pyzmq', mode, ratio))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as fh:
            json.dump(results, fh, indent=2)


if __name__ == '__main__':
    main()
