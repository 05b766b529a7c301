"""pseud-native: this project, pseud.Server / pseud.Client.

send_to: with the default noop security a Client is anonymous, so the
called peer is a second pseud.Server (user id b'bench') that connects to
the caller, a pseud.Server that binds and calls ``send_to(b'bench')``.

The broker's scenarios (docs/guide/scaling.rst): ``serve_broker`` runs a
pseud.Broker for the service b'bench', ``serve_worker`` a Server of it
that serves through that broker; the caller connects to the frontend as
to a server."""
import pseud

from burn import burn

NAME = 'pseud-native'
KIND = 'gevent'
NOT_SUPPORTED = {}
SHARED_CALLER = True
TIMEOUT = 30
SERVICE = b'bench'
_keep = []          # responders live as long as the process


def _echo(data):
    return data


def _server(rounds):
    """A Server of the service with echo, and burn when ``rounds`` is given
    (burns, then returns its argument, like echo)."""
    server = pseud.Server(SERVICE, timeout=TIMEOUT)
    server.register_rpc(name='echo')(_echo)
    if rounds:
        def _burn(data):
            burn(rounds)
            return data
        server.register_rpc(name='burn')(_burn)
    _keep.append(server)
    return server


def serve(endpoint, bind, burn_rounds=0):
    server = _server(burn_rounds)
    endpoint = server.bind(endpoint) if bind else (server.connect(endpoint) or endpoint)
    server.start()
    return endpoint


def serve_broker(endpoint):
    """A broker with its frontend and backend bound at ``endpoint`` (each
    its own port): (frontend, backend, broker)."""
    broker = pseud.Broker(SERVICE, frontend=endpoint, backend=endpoint, timeout=TIMEOUT)
    broker.start()
    _keep.append(broker)
    return broker.frontend_endpoint, broker.backend_endpoint, broker


def serve_worker(backend, burn_rounds=0):
    server = _server(burn_rounds)
    server.connect_broker(backend)
    server.start()


class Caller:
    def __init__(self, rpc, target, method='echo'):
        self.rpc = rpc                  # kept alive with the caller
        self.method = getattr(target, method)

    def call_async(self, payload):
        return self.method(payload)

    def call(self, payload):
        return self.method(payload).get()


def connect(endpoint, method='echo'):
    client = pseud.Client(SERVICE, timeout=TIMEOUT)
    client.connect(endpoint)
    client.start()
    return Caller(client, client, method)


def reverse_caller(endpoint):
    server = pseud.Server(b'caller', timeout=TIMEOUT)
    endpoint = server.bind(endpoint)
    server.start()
    return endpoint, Caller(server, server.send_to(SERVICE))
