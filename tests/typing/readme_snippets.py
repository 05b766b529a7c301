"""The README's snippets, as a user would type them, for mypy --strict
(tests/test_typing.py). Wrapped in functions: nothing runs on import."""
import gevent

import pseud
from pseud.interfaces import TimeoutError as CallTimeout
from pseud.utils import register_rpc


def readme_server() -> None:
    server = pseud.Server('remote')
    server.bind('tcp://127.0.0.1:5555')
    server.register_rpc(str.lower)        # this server only
    register_rpc(str.upper)               # every RPC of the process
    server.start()
    gevent.wait()


def readme_client() -> None:
    client = pseud.Client('remote')
    client.connect('tcp://127.0.0.1:5555')
    assert client.lower('ABC').get() == 'abc'
    assert client.upper('def').get() == 'DEF'


def readme_security() -> int:
    server = pseud.Server('service', security_plugin='trusted_peer')
    endpoint: str = server.bind('tcp://127.0.0.1:*')
    server.start()

    client = pseud.Client('service', security_plugin='plain',
                          user_id='client1', password='')
    client.connect(endpoint)
    client.register_rpc(name='addition')(lambda a, b: a + b)

    result: int = server.send_to('client1').addition(2, 4).get()
    return result


def readme_curve() -> None:
    server_public, server_secret = pseud.curve_keypair()
    client_public, client_secret = pseud.curve_keypair()
    server = pseud.Server('service', security_plugin='trusted_curve',
                          public_key=server_public, secret_key=server_secret)
    server.auth_backend.known_identities[b'carol'] = client_public
    server.bind('tcp://127.0.0.1:*')
    client = pseud.Client('service', security_plugin='trusted_curve',
                          public_key=client_public, secret_key=client_secret,
                          peer_public_key=server_public)
    assert pseud.z85_decode(pseud.z85_encode(b'\x00' * 32)) == b'\x00' * 32
    client.stop()
    server.stop()


@register_rpc(name='this.is.a.name')
def call_me() -> str:
    return 'Done'


def readme_keyword_names(client: pseud.Client) -> str:
    named: str = getattr(client.this, 'is').a.name().get()
    return named


def readme_syncclient(endpoint: str) -> None:
    client = pseud.SyncClient(timeout=5)
    client.connect(endpoint)
    try:
        print(client.lower('ABC'))
    except CallTimeout:
        print('no reply in time; the next call works')
    client.close()


def readme_futures(client: pseud.Client) -> list[object]:
    futures = [client.lower('A'), client.upper('b')]
    gevent.wait(futures)
    return [future.get(timeout=1) for future in futures]
