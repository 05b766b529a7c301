"""A peer for tests/test_faults.py, in a process of its own so that the
test can kill or freeze it. One JSON object a line on stdout.

    fault_peer.py server USER_ID OPTIONS_JSON [PORT]
        a Server serving echo(x) and sleep(seconds), bound to
        tcp://127.0.0.1:PORT (any port by default); prints {"endpoint": ...}.
    fault_peer.py client SERVER_ID ENDPOINT OPTIONS_JSON
        a Client serving echo(x) and sleep(seconds) to its server, calling
        its ping() every 0.2 s (so that the server knows it); prints
        {"ready": true} after the first answer.
    fault_peer.py relay PORT
        a TCP relay to 127.0.0.1:PORT; prints {"port": ...}. On stdin,
        "block" stops forwarding without closing anything (a link down:
        packets black-holed) and prints {"blocked": true}; "open" closes every
        connection made so far and forwards new ones again.
"""
import json
import select
import socket
import sys
import threading


def say(**message):
    sys.stdout.write(json.dumps(message) + '\n')
    sys.stdout.flush()


def register(rpc):
    import gevent

    rpc.register_rpc(name='echo')(lambda x: x)

    @rpc.register_rpc(name='sleep')
    def sleep(seconds):
        gevent.sleep(seconds)
        return seconds


def server(user_id, options, port='*'):
    import gevent
    import pseud
    rpc = pseud.Server(user_id, **json.loads(options))
    register(rpc)
    endpoint = rpc.bind('tcp://127.0.0.1:%s' % port)
    rpc.start()
    say(endpoint=endpoint)
    gevent.sleep(3600)


def client(server_id, endpoint, options):
    import gevent
    import pseud
    rpc = pseud.Client(server_id, **json.loads(options))
    register(rpc)
    rpc.connect(endpoint)
    rpc.start()
    ready = False
    while True:
        try:
            rpc.ping().get(timeout=5)
            if not ready:
                say(ready=True)
                ready = True
        except (Exception, gevent.Timeout):
            pass    # the server or the link is away: keep trying
        gevent.sleep(0.2)


class Relay:
    def __init__(self, port):
        self.target = ('127.0.0.1', int(port))
        self.blocked = False
        self.generation = 0
        self.listener = socket.socket()
        self.listener.bind(('127.0.0.1', 0))
        self.listener.listen(64)

    def pump(self, src, dst, generation):
        try:
            while self.generation == generation:
                ready, _, _ = select.select([src], [], [], 0.05)
                if self.blocked or not ready:
                    continue     # a black hole: nothing read, nothing closed
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def accept(self):
        while True:
            conn, _ = self.listener.accept()
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                conn.close()
                continue
            generation = self.generation
            for src, dst in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self.pump, args=(src, dst, generation),
                                 daemon=True).start()

    def run(self):
        threading.Thread(target=self.accept, daemon=True).start()
        say(port=self.listener.getsockname()[1])
        for line in sys.stdin:
            command = line.strip()
            if command == 'block':
                self.blocked = True
                say(blocked=True)
            elif command == 'open':
                self.generation += 1
                self.blocked = False
                say(opened=True)


if __name__ == '__main__':
    role, args = sys.argv[1], sys.argv[2:]
    if role == 'server':
        server(*args)
    elif role == 'client':
        client(*args)
    else:
        Relay(*args).run()
