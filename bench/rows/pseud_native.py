"""pseud-native: this project, pseud.Server / pseud.Client.

send_to: with the default noop security a Client is anonymous, so the
called peer is a second pseud.Server (user id b'bench') that connects to
the caller, a pseud.Server that binds and calls ``send_to(b'bench')``."""
import pseud

NAME = 'pseud-native'
KIND = 'gevent'
NOT_SUPPORTED = {}
SHARED_CALLER = True
TIMEOUT = 30
_keep = []          # responders live as long as the process


def _echo(data):
    return data


def serve(endpoint, bind):
    server = pseud.Server(b'bench', timeout=TIMEOUT)
    server.register_rpc(name='echo')(_echo)
    endpoint = server.bind(endpoint) if bind else (server.connect(endpoint) or endpoint)
    server.start()
    _keep.append(server)
    return endpoint


class Caller:
    def __init__(self, rpc, target):
        self.rpc = rpc                  # kept alive with the caller
        self.echo = target.echo

    def call_async(self, payload):
        return self.echo(payload)

    def call(self, payload):
        return self.echo(payload).get()


def connect(endpoint):
    client = pseud.Client(b'bench', timeout=TIMEOUT)
    client.connect(endpoint)
    client.start()
    return Caller(client, client)


def reverse_caller(endpoint):
    server = pseud.Server(b'caller', timeout=TIMEOUT)
    endpoint = server.bind(endpoint)
    server.start()
    return endpoint, Caller(server, server.send_to(b'bench'))
