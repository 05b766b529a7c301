"""Shared fixtures: servers and clients on free loopback ports (or unique
inproc names), always stopped in finalizers."""
import os

import pytest

import pseud

from naming import unique


@pytest.fixture
def make_server(request):
    """make_server(user_id='srv', endpoint='tcp://127.0.0.1:*', **options)
    -> (server, endpoint), started, stopped at teardown."""
    made = []

    def factory(user_id=None, endpoint='tcp://127.0.0.1:*', start=True, **options):
        # bytes: tests put the server's user_id (read back as given) in frames
        server = pseud.Server(user_id or unique('srv').encode(), **options)
        made.append(server)
        bound = server.bind(endpoint)
        if start:
            server.start()
        return server, bound

    yield factory
    for server in made:
        server.stop()


@pytest.fixture
def make_client(request):
    """make_client(peer, endpoint, **options) -> connected client, stopped at teardown."""
    made = []

    def factory(peer, endpoint=None, **options):
        client = pseud.Client(peer, **options)
        made.append(client)
        if endpoint is not None:
            client.connect(endpoint)
        return client

    yield factory
    for client in made:
        client.stop()


@pytest.fixture
def pair(make_server, make_client):
    """A started server and a client connected to it over tcp loopback."""
    server, endpoint = make_server()
    client = make_client(server.user_id, endpoint)
    return server, client


def pytest_configure(config):
    # every test that touches the network has a hard timeout (pytest-timeout)
    config.addinivalue_line('markers', 'slow: takes more than a second')
    config.addinivalue_line('markers', 'packaging: builds an sdist or a wheel and '
                            'installs it into a fresh virtualenv (slow)')
    os.environ.setdefault('PSEUD_TESTING', '1')


@pytest.fixture(autouse=True)
def _fresh_log_limits():
    """The limits on log lines a peer can cause are the process's (one
    budget a second per kind): each test starts with its own budget, so a
    test's expected line is not swallowed by an earlier test's flood."""
    pseud._pseud._log_limit_reset()
    yield
