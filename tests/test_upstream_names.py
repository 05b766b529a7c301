"""The names upstream pseud's programs import, with upstream's meaning
(issue: drop-in fidelity), and a clear error when the extension is not
built."""
import datetime
import os
import shutil
import subprocess
import sys

import gevent
import pytest
import zope.interface
from zope.interface.verify import verifyClass, verifyObject

import pseud
from pseud import auth, common, heartbeat, interfaces, predicate

AUTH = {
    'NoOpAuthenticationBackendForClient': ('noop_auth_backend', 'client'),
    'NoOpAuthenticationBackendForServer': ('noop_auth_backend', 'server'),
    'PlainForClient': ('plain', 'client'),
    'PlainForServer': ('plain', 'server'),
    'TrustedPeerForServer': ('trusted_peer', 'server'),
    'CurveWithTrustedKeyForClient': ('trusted_curve', 'client'),
    'CurveWithTrustedKeyForServer': ('trusted_curve', 'server'),
    'CurveWithUntrustedKeyForClient': ('untrusted_curve', 'client'),
    'CurveWithUntrustedKeyForServer': ('untrusted_curve', 'server'),
}
HEARTBEAT = {
    'NoOpHeartbeatBackendForClient': ('noop_heartbeat_backend', 'client'),
    'NoOpHeartbeatBackendForServer': ('noop_heartbeat_backend', 'server'),
    'TestingHeartbeatBackendForClient': ('testing_heartbeat_backend', 'client'),
    'TestingHeartbeatBackendForServer': ('testing_heartbeat_backend', 'server'),
}


@pytest.mark.parametrize('class_name', sorted(AUTH))
def test_auth_classes_are_the_plugins_of_their_name_and_side(class_name):
    cls = getattr(auth, class_name)
    name, side = AUTH[class_name]
    assert cls.name == name
    assert pseud.utils.auth_backends.lookup(name, side) is cls
    assert verifyClass(interfaces.IAuthenticationBackend, cls)
    assert interfaces.IAuthenticationBackend.implementedBy(cls)


@pytest.mark.parametrize('class_name', sorted(HEARTBEAT))
def test_heartbeat_classes_are_the_plugins_of_their_name_and_side(class_name):
    cls = getattr(heartbeat, class_name)
    name, side = HEARTBEAT[class_name]
    assert cls.name == name
    assert pseud.utils.heartbeat_backends.lookup(name, side) is cls
    assert verifyClass(interfaces.IHeartbeatBackend, cls)


def test_built_plugins_provide_their_interfaces():
    client = pseud.Client('nobody')
    server = pseud.Server('somebody')
    try:
        assert interfaces.IClient.providedBy(client)
        assert interfaces.IServer.providedBy(server)
        assert verifyObject(interfaces.IAuthenticationBackend, server.auth_backend)
        assert verifyObject(interfaces.IHeartbeatBackend, client.heartbeat_backend)
        assert isinstance(server.auth_backend, auth.NoOpAuthenticationBackendForServer)
    finally:
        client.stop()
        server.stop()


def test_interfaces_check_something():
    # a class missing a hook the core calls fails verification
    @zope.interface.implementer(interfaces.IAuthenticationBackend)
    class Incomplete:
        def __init__(self, rpc):
            self.rpc = rpc

    with pytest.raises(zope.interface.Invalid, match='handle_hello'):
        verifyClass(interfaces.IAuthenticationBackend, Incomplete)
    for iface in (interfaces.IAuthenticationBackend, interfaces.IHeartbeatBackend,
                  interfaces.IPredicate, interfaces.IClient, interfaces.IServer,
                  interfaces.IRPCCallable, interfaces.IRPCRoute, interfaces.IBaseRPC):
        assert issubclass(iface, zope.interface.Interface)
    for method in ('configure', 'stop', 'handle_hello', 'is_authenticated',
                   'get_routing_id', 'register_routing_id', 'save_last_work',
                   'handle_authenticated', 'get_predicate_arguments'):
        assert method in interfaces.IAuthenticationBackend
    for method in ('handle_heartbeat', 'handle_timeout', 'configure', 'stop'):
        assert method in interfaces.IHeartbeatBackend


def test_upstream_style_subclass_registers_under_a_new_name(make_server, make_client):
    # upstream's security chapter: subclass a built-in server plugin
    @pseud.utils.register_auth_backend
    @zope.interface.implementer(interfaces.IAuthenticationBackend)
    class Picky(auth.TrustedPeerForServer):
        name = 'picky_trusted_peer'

        def is_authenticated(self, user_id):
            return user_id == b'alice'

    try:
        assert pseud.utils.auth_backends.lookup('picky_trusted_peer', 'server') is Picky
        server, endpoint = make_server(security_plugin='picky_trusted_peer', timeout=5)
        server.register_rpc(name='who')(lambda: 'ok')
        alice = make_client(server.user_id, endpoint, security_plugin='plain',
                            user_id='alice', password='x', timeout=5)
        assert alice.who().get() == 'ok'
    finally:
        pseud.utils.auth_backends.unregister('picky_trusted_peer')


def test_predicates_keep_upstream_names():
    from pseud._pseud import predicates
    assert predicates['default'] is predicate.PassThrough
    assert predicates['restricted'] is predicate.FilterByModule
    assert verifyClass(interfaces.IPredicate, predicate.PassThrough)
    assert predicate.FilterByModule(None).test() is False


def test_common_names():
    assert common.internal_exceptions == (
        'ServiceNotFoundError', 'TimeoutError', 'UnauthorizedError')
    assert common.UTC.utcoffset(datetime.datetime(2020, 1, 1)) == datetime.timedelta(0)
    with pytest.raises(KeyError):
        common.DummyFuture().set_exception(KeyError('gone'))


def test_gevent_module_and_sync_base():
    from pseud import _gevent
    assert issubclass(_gevent.Client, pseud.Client)
    assert issubclass(_gevent.Server, pseud.Server)
    assert issubclass(_gevent.Client, _gevent.GeventBaseRPC)
    assert issubclass(_gevent.GeventBaseRPC, common.BaseRPC)
    assert interfaces.IClient.implementedBy(_gevent.Client)
    assert pseud.SyncBaseRPC is pseud.SyncClient


def test_gevent_module_first_start_yields_to_the_hub():
    from pseud import _gevent
    name = 'paused_' + os.urandom(4).hex()
    server = _gevent.Server(name)
    server.bind('inproc://' + name)
    ran = []
    gevent.spawn(ran.append, 1)
    try:
        server.start()              # upstream's gevent flavour slept here
        assert ran == [1]
    finally:
        server.stop()


def test_import_without_built_extension_says_what_to_do(tmp_path):
    # a clone's root: pseud/ with its Python sources only
    shutil.copytree(os.path.dirname(pseud.__file__), tmp_path / 'pseud',
                    ignore=shutil.ignore_patterns('*.so', '*.pyd', '__pycache__'))
    out = subprocess.run([sys.executable, '-c', 'import pseud'], cwd=tmp_path,
                         capture_output=True, text=True, timeout=30,
                         env={k: v for k, v in os.environ.items()
                              if k not in ('PYTHONPATH', 'PYTHONSAFEPATH')})
    assert out.returncode != 0
    assert ('ImportError: pseud._pseud is not built: run bash scripts/test.sh, '
            'or pip install .') in out.stderr
