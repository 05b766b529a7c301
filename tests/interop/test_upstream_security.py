"""Security plugins across implementations (docs/guide/security.rst): upstream pseud
1.0.1 with PLAIN and CURVE backends against our built-in plugins, both ways.

Upstream 1.0.1 ships only the noop backend; upstream_plugins.py defines
upstream-API backends (PLAIN and CURVE clients, a PLAIN server with its own
ZAP handler) that the peer imports with --plugin-module. Waits are bounded
and cooperative (the peer's output is polled with gevent.sleep) and every
peer is killed in a finalizer, through test_upstream's fixtures.
"""
import datetime
import time

import gevent
import pytest

import pseud
from pseud import _pseud
from pseud.interfaces import ServiceNotFoundError

from naming import unique
from test_upstream import (  # noqa: F401  (fixtures are used by name)
    CEST, DATES, INTEROP_PYTHON, UTC, Security, call, ours, register_ours, upstream,
    upstream_client, value_of)

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        not INTEROP_PYTHON,
        reason='PSEUD_INTEROP_PYTHON is not set: run `bash scripts/test.sh`, which '
               'creates .venv-interop with upstream pseud 1.0.1 and exports it'),
]

PLUGINS = 'upstream_plugins'
REFUSED = 1.0        # timeout (s) of calls that a refused handshake must fail
# timeout (s) of the admitted upstream peers' calls where many upstream
# processes start at once: their default 5 s was seen to run out on a
# loaded 2-core machine before the calls were even sent
ADMITTED = 20.0


def _b(value):
    """An --options value that the peer turns into bytes."""
    return 'b:' + (value.decode('ascii') if isinstance(value, bytes) else value)


def upstream_plain(ours_plugin, user, password, **upstream_options):
    """Our server with `ours_plugin`, an upstream client logging in over PLAIN."""
    options = {'security_plugin': 'plain', 'user_id': _b(user)}
    if password is not None:
        options['password'] = _b(password)
    options.update(upstream_options)
    return Security(ours={'security_plugin': ours_plugin}, upstream=options,
                    plugin_module=PLUGINS)


def upstream_curve(public, secret, server_public, **upstream_options):
    options = {'security_plugin': 'trusted_curve', 'public_key': _b(public),
               'secret_key': _b(secret), 'peer_public_key': _b(server_public)}
    options.update(upstream_options)
    return Security(ours={}, upstream=options, plugin_module=PLUGINS)


def refused(entry):
    """An upstream client's result for a call whose handshake was refused:
    upstream gives up sending after its EHOSTUNREACH retries and its
    timeout detector fails the future."""
    return entry.get('error') == 'TimeoutError'


def poll(fetch, ready, timeout=15):
    """fetch() until ready(value), cooperatively; the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if ready(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail('still not ready after %ss: %r' % (timeout, value))
        gevent.sleep(0.05)


def secure_server(make_server, **options):
    server, endpoint = make_server(**options)
    register_ours(server)
    return server, endpoint


# --- 1. upstream PLAIN client -> our `plain` server ------------------------------

def test_upstream_plain_client_to_our_plain_server(make_server, ours):
    server, _ = secure_server(make_server, security_plugin='plain')
    _, results = ours([
        call('whoami'),
        call('string.upper', 'secured'),
        call('echo', **DATES),
        call('add_days', DATES['cest'], 2),
        call('fail', 'no over plain'),
    ], security=upstream_plain('plain', 'client1', 'client1'), server=server)
    assert value_of(results[0]) == b'client1'
    assert value_of(results[1]) == 'SECURED'
    assert value_of(results[2]) == ((), DATES)
    assert value_of(results[3]) == DATES['cest'] + datetime.timedelta(days=2)
    assert value_of(results[3]).tzinfo == CEST
    assert results[4]['error'] == 'ValueError' and 'no over plain' in results[4]['message']


def test_upstream_plain_wrong_password_is_refused(make_server, make_client, upstream_client):
    server, endpoint = secure_server(make_server, security_plugin='plain')
    # the refused peer and an admitted one at the same time
    bad = upstream_client(endpoint, server.user_id, [call('whoami'), call('echo', 1)],
                          security=upstream_plain('plain', 'client1', 'wrong', timeout=REFUSED))
    good = upstream_client(endpoint, server.user_id, [call('whoami')],
                           security=upstream_plain('plain', 'client2', 'client2'))
    bad_results = bad.wait_for('results')['results']
    assert all(refused(r) for r in bad_results), bad_results
    assert value_of(good.wait_for('results')['results'][0]) == b'client2'
    # no password at all is a wrong one for the `plain` rule too
    nopass = upstream_client(endpoint, server.user_id, [call('whoami')],
                             security=upstream_plain('plain', 'client3', None, timeout=REFUSED))
    assert refused(nopass.wait_for('results')['results'][0])
    # our server kept serving: another upstream peer and one of ours
    again = upstream_client(endpoint, server.user_id, [call('whoami')],
                            security=upstream_plain('plain', 'client1', 'client1'))
    assert value_of(again.wait_for('results')['results'][0]) == b'client1'
    mine = make_client(server.user_id, endpoint, security_plugin='plain',
                       user_id='native', password='native')
    assert mine.whoami().get() == b'native'
    assert not server.future_pool


def test_upstream_noop_client_cannot_talk_to_our_plain_server(make_server, upstream_client):
    server, endpoint = secure_server(make_server, security_plugin='plain')
    peer = upstream_client(endpoint, server.user_id, [call('whoami')],
                           security=Security(ours={}, upstream={'timeout': REFUSED},
                                             plugin_module=None))
    assert refused(peer.wait_for('results')['results'][0])


# --- 2. upstream PLAIN client -> our `trusted_peer` server, and back ---------------

@pytest.mark.parametrize('password', ['anything', None], ids=['password', 'no-password'])
def test_upstream_plain_client_to_our_trusted_peer_server(make_server, ours, password):
    server, _ = secure_server(make_server, security_plugin='trusted_peer')
    _, results = ours([call('whoami'), call('string.upper', 'trusted')],
                      security=upstream_plain('trusted_peer', 'client1', password),
                      server=server)
    assert value_of(results[0]) == b'client1'
    assert value_of(results[1]) == 'TRUSTED'


def test_our_trusted_peer_server_calls_upstream_clients_by_user_id(make_server,
                                                                    upstream_client):
    # Unlike under noop (test_upstream.test_our_server_calls_upstream_client),
    # the upstream client keeps the routing id ZeroMQ gives it: our server
    # learns user id -> routing id from its first authenticated message.
    server, endpoint = secure_server(make_server, security_plugin='trusted_peer')
    peers = {}
    for name in ('client1', 'client2'):
        peers[name] = upstream_client(
            endpoint, server.user_id, [call('whoami')],
            security=upstream_plain('trusted_peer', name, 'ignored'), serve_for=40)
    for name, peer in peers.items():
        assert value_of(peer.wait_for('results')['results'][0]) == name.encode()
        peer.wait_for('serving')

    them = server.send_to('client1')
    assert them.client.hello('ours').get() == 'hello ours from upstream client'
    # each user id reaches its own process
    assert them.plugin.login().get() == b'client1'
    assert server.send_to(b'client2').plugin.login().get() == b'client2'
    assert server.send_to('client1').plugin.login().get() == b'client1'
    when = DATES['utc']
    assert them.add_days(when, 2).get() == when + datetime.timedelta(days=2)
    assert them.echo(**DATES).get() == ((), DATES)
    # an upstream client sees no User-Id (it runs no ZAP handler): b''
    assert them.whoami().get() == b''
    with pytest.raises(ValueError) as info:
        them.fail('from upstream client1').get()
    assert 'from upstream client1' in str(info.value)
    assert '-- Beginning of remote traceback --' in str(info.value)
    with pytest.raises(ServiceNotFoundError) as info:
        them.nothing.here().get()
    assert 'nothing.here' in str(info.value)
    futures = [server.send_to(name).echo(i) for i in range(30) for name in peers]
    gevent.wait(futures, timeout=20)
    assert [f.get(timeout=0) for f in futures] == [((i,), {}) for i in range(30)
                                                   for _ in peers]
    assert not server.future_pool


# --- 3. upstream CURVE client -> our `trusted_curve` server ---------------------------

@pytest.fixture
def curve_server(make_server):
    public, secret = pseud.curve_keypair()
    server, endpoint = secure_server(make_server, security_plugin='trusted_curve',
                                     public_key=public, secret_key=secret)
    return server, endpoint, public


def test_upstream_curve_client_to_our_trusted_curve_server(curve_server, ours):
    server, endpoint, server_public = curve_server
    public, secret = server.auth_backend.known_identities[b'bob']
    blob = bytes(range(256)) * 1024
    _, results = ours([
        call('whoami'),
        call('string.upper', 'encrypted'),
        call('echo', blob, when=DATES['utc']),
        call('fail', 'no over curve'),
    ], security=upstream_curve(public, secret, server_public), server=server)
    assert value_of(results[0]) == b'bob'
    assert value_of(results[1]) == 'ENCRYPTED'
    assert value_of(results[2]) == ((blob,), {'when': DATES['utc']})
    assert results[3]['error'] == 'ValueError' and 'no over curve' in results[3]['message']


def test_upstream_curve_client_with_an_added_key(curve_server, ours):
    server, endpoint, server_public = curve_server
    public, secret = pseud.curve_keypair()
    server.auth_backend.known_identities[b'carol'] = public
    _, results = ours([call('whoami')], security=upstream_curve(public, secret, server_public),
                      server=server)
    assert value_of(results[0]) == b'carol'


def test_upstream_curve_unknown_key_is_refused(curve_server, ours):
    server, endpoint, server_public = curve_server
    public, secret = pseud.curve_keypair()
    _, results = ours([call('whoami'), call('echo', 1)],
                      security=upstream_curve(public, secret, server_public, timeout=REFUSED),
                      server=server)
    assert all(refused(r) for r in results), results
    # a known key with the wrong server key fails the handshake as well
    bob_public, bob_secret = server.auth_backend.known_identities[b'bob']
    wrong_server = pseud.curve_keypair()[0]
    _, results = ours([call('whoami')],
                      security=upstream_curve(bob_public, bob_secret, wrong_server,
                                              timeout=REFUSED),
                      server=server)
    assert refused(results[0])
    # and our server still admits alice
    alice_public, alice_secret = server.auth_backend.known_identities[b'alice']
    _, results = ours([call('whoami')],
                      security=upstream_curve(alice_public, alice_secret, server_public),
                      server=server)
    assert value_of(results[0]) == b'alice'


def test_our_trusted_curve_server_calls_upstream_client_back(curve_server, upstream_client):
    server, endpoint, server_public = curve_server
    public, secret = server.auth_backend.known_identities[b'bob']
    peer = upstream_client(endpoint, server.user_id, [call('whoami')],
                           security=upstream_curve(public, secret, server_public),
                           serve_for=40)
    assert value_of(peer.wait_for('results')['results'][0]) == b'bob'
    peer.wait_for('serving')
    bob = server.send_to('bob')
    assert bob.string.upper('back over curve').get() == 'BACK OVER CURVE'
    with pytest.raises(ValueError):
        bob.fail('bob refuses').get()


# --- 4. our PLAIN client -> upstream server with the test PLAIN backend ----------------

@pytest.fixture
def plain_upstream_server(upstream):
    """(user id, endpoint) of an upstream server with upstream_plugins' `plain`."""
    user_id = unique('upsrv')
    peer = upstream(['server', '--user-id', user_id, '--plugin-module', PLUGINS,
                     '--options', '{"security_plugin": "plain"}'])
    return user_id, peer.wait_for('endpoint')['endpoint']


def test_our_plain_client_to_upstream_plain_server(plain_upstream_server, make_client):
    user_id, endpoint = plain_upstream_server
    client = make_client(user_id, endpoint, security_plugin='plain',
                         user_id='client1', password='client1')
    # upstream's with_identity passes the ZAP User-Id (its handler's reply)
    assert client.whoami().get() == b'client1'
    assert client.string.upper('over plain').get() == 'OVER PLAIN'
    assert client.echo(**DATES).get() == ((), DATES)
    assert client.types(*DATES.values()).get() == (
        ('datetime', 'datetime', 'datetime', 'date', 'timedelta', 'timezone'), {})
    got = client.add_days(DATES['cest'], 10).get()
    assert got == DATES['cest'] + datetime.timedelta(days=10) and got.tzinfo == CEST
    assert client.add_days(DATES['utc'], -1).get().tzinfo == UTC
    assert client.add_days(DATES['day'], 1).get() == datetime.date(2000, 3, 1)
    with pytest.raises(ValueError) as info:
        client.fail('upstream refuses over plain').get()
    assert 'upstream refuses over plain' in str(info.value)
    with pytest.raises(ServiceNotFoundError):
        client.no.such.thing().get()
    # arrays come back as tuples
    assert client.plugin.zap_log().get() == ((b'client1', True),)


def test_our_plain_client_wrong_password_to_upstream_plain_server(plain_upstream_server,
                                                                   make_client):
    user_id, endpoint = plain_upstream_server
    bad = make_client(user_id, endpoint, security_plugin='plain',
                      user_id='mallory', password='guess', timeout=REFUSED)
    with pytest.raises(gevent.Timeout):
        bad.whoami().get()
    good = make_client(user_id, endpoint, security_plugin='plain',
                       user_id='client2', password='client2')
    assert good.whoami().get() == b'client2'
    log = good.plugin.zap_log().get()
    assert (b'mallory', False) in log and (b'client2', True) in log
    assert bad.future_pool == {}


def test_upstream_plain_server_calls_our_clients_by_user_id(plain_upstream_server,
                                                             make_client):
    # The upstream server maps the ZAP User-Id of each message to its routing
    # id (register_routing_id in the test backend) and sends by user id.
    user_id, endpoint = plain_upstream_server
    clients = {}
    for name in ('client1', 'client2'):
        client = make_client(user_id, endpoint, security_plugin='plain',
                             user_id=name, password=name)
        client.register_rpc(name='mine.who')(lambda name=name: name)
        client.register_rpc(name='mine.add_days')(
            lambda when, n: when + datetime.timedelta(days=n))

        @client.register_rpc(name='mine.fail')
        def fail():
            raise ValueError('ours refuses')

        clients[name] = client

    def results_after(login, count, name, *args):
        client = clients[login]
        # call_me_back answers with the user id it calls back
        assert client.plugin.call_me_back(name, *args).get() == login.encode()
        return poll(lambda: client.plugin.callback_results().get(),
                    lambda got: len(got) >= count)

    got = results_after('client2', 1, 'mine.who')
    assert got == (('ok', 'client2'),)
    got = results_after('client1', 2, 'mine.who')
    assert got[1] == ('ok', 'client1')
    got = results_after('client1', 3, 'mine.add_days', DATES['cest'], 3)
    assert got[2] == ('ok', DATES['cest'] + datetime.timedelta(days=3))
    got = results_after('client1', 4, 'mine.fail')
    assert got[3][:2] == ('error', 'ValueError') and 'ours refuses' in got[3][2]


# --- logins and reconnections --------------------------------------------------------

def test_non_ascii_login_both_ways(make_server, ours, plain_upstream_server, make_client):
    # ZAP's User-Id is a string property: upstream encodes it as utf-8, and
    # so must we
    server, _ = secure_server(make_server, security_plugin='trusted_peer')
    _, results = ours([call('whoami')], security=upstream_plain('trusted_peer', 'clïent', 'x'),
                      server=server)
    assert value_of(results[0]) == 'clïent'.encode('utf-8')
    user_id, endpoint = plain_upstream_server
    client = make_client(user_id, endpoint, security_plugin='plain',
                         user_id='ünïcode', password='ünïcode')
    assert client.whoami().get() == 'ünïcode'.encode('utf-8')


def test_send_to_follows_a_reconnected_upstream_client(make_server, upstream_client):
    # the same login from a new process (a new routing id): send_to reaches
    # the newest connection
    server, endpoint = secure_server(make_server, security_plugin='trusted_peer')
    security = upstream_plain('trusted_peer', 'roamer', 'x')
    first = upstream_client(endpoint, server.user_id, [call('whoami')], security=security,
                            serve_for=40)
    assert value_of(first.wait_for('results')['results'][0]) == b'roamer'
    first.wait_for('serving')
    assert server.send_to('roamer').string.upper('one').get() == 'ONE'
    first.kill()
    second = upstream_client(endpoint, server.user_id, [call('whoami')], security=security,
                             serve_for=40)
    assert value_of(second.wait_for('results')['results'][0]) == b'roamer'
    second.wait_for('serving')
    assert server.send_to('roamer').string.upper('two').get() == 'TWO'


def test_send_to_before_the_first_message_fails_at_once(make_server, upstream_client):
    # a client is addressable only after its first message; before, no
    # connected peer has its user id (docs/guide/calls.rst, send_to)
    server, endpoint = secure_server(make_server, security_plugin='trusted_peer',
                                     timeout=REFUSED)
    with pytest.raises(_pseud.ZMQError, match="'client1'"):
        server.send_to('client1').string.upper('early')
    peer = upstream_client(endpoint, server.user_id, [call('whoami')],
                           security=upstream_plain('trusted_peer', 'client1', 'x'),
                           serve_for=40)
    assert value_of(peer.wait_for('results')['results'][0]) == b'client1'
    peer.wait_for('serving')
    assert server.send_to('client1').string.upper('late').get() == 'LATE'
    assert not server.future_pool


def test_our_documented_client_with_empty_password(plain_upstream_server, make_client):
    # the documented password='' sends PLAIN with an empty password; the test
    # backend's rule (login == password) refuses it, and says so in its log
    user_id, endpoint = plain_upstream_server
    client = make_client(user_id, endpoint, security_plugin='plain',
                         user_id='client1', password='', timeout=REFUSED)
    with pytest.raises(gevent.Timeout):
        client.whoami().get()
    good = make_client(user_id, endpoint, security_plugin='plain',
                       user_id='client2', password='client2')
    assert (b'client1', False) in good.plugin.zap_log().get()


# --- several peers and servers at once ----------------------------------------------

def test_many_upstream_peers_on_servers_with_different_plugins(make_server, curve_server,
                                                                upstream_client):
    # one process, three of our servers, three ZAP rules (one libzmq ZAP
    # handler): upstream peers good and bad on all of them at once, with
    # calls in flight together
    plain, plain_endpoint = secure_server(make_server, security_plugin='plain')
    trusted, trusted_endpoint = secure_server(make_server, security_plugin='trusted_peer')
    curve, curve_endpoint, curve_public = curve_server
    slow = [call('slow', i) for i in range(40)] + [call('whoami')]
    bad_key = pseud.curve_keypair()
    cases = [
        (plain, plain_endpoint, upstream_plain('plain', 'p1', 'p1', timeout=ADMITTED), b'p1'),
        (plain, plain_endpoint, upstream_plain('plain', 'p2', 'nope', timeout=REFUSED), None),
        (trusted, trusted_endpoint,
         upstream_plain('trusted_peer', 't1', 'nope', timeout=ADMITTED), b't1'),
        (trusted, trusted_endpoint,
         upstream_plain('trusted_peer', 't2', None, timeout=ADMITTED), b't2'),
        (curve, curve_endpoint,
         upstream_curve(*curve.auth_backend.known_identities[b'alice'], curve_public,
                        timeout=ADMITTED), b'alice'),
        (curve, curve_endpoint,
         upstream_curve(*bad_key, curve_public, timeout=REFUSED), None),
        # a PLAIN peer at a CURVE server and the other way round
        (curve, curve_endpoint, upstream_plain('plain', 'p3', 'p3', timeout=REFUSED), None),
        (plain, plain_endpoint,
         upstream_curve(*curve.auth_backend.known_identities[b'bob'], curve_public,
                        timeout=REFUSED), None),
    ]
    peers = [upstream_client(endpoint, server.user_id, slow, security=security,
                             concurrent=True)
             for server, endpoint, security, _ in cases]
    for peer, (server, _, security, login) in zip(peers, cases):
        results = peer.wait_for('results')['results']
        if login is None:
            assert all(refused(r) for r in results), (security, results[:2])
        else:
            assert [value_of(r) for r in results] == [i * 2 for i in range(40)] + [login]
    for server in (plain, trusted, curve):
        assert not server.future_pool
