"""Heartbeat plugins (docs/guide/heartbeats.rst).

``handle_heartbeat(user_id, routing_id)`` is called by the core for every
authenticated incoming message: every message counts as a heartbeat. The
built-in ones carry upstream's class names.
"""
import zope.interface

from . import _pseud
from ._plugin import PluginBase, identity
from .interfaces import EMPTY_DELIMITER, HEARTBEAT, VERSION, IHeartbeatBackend
from .utils import register_heartbeat_backend

__all__ = ['BaseHeartbeatBackend',
           'NoOpHeartbeatBackendForClient', 'NoOpHeartbeatBackendForServer',
           'TestingHeartbeatBackendForClient', 'TestingHeartbeatBackendForServer']


@zope.interface.implementer(IHeartbeatBackend)
class BaseHeartbeatBackend(PluginBase):
    """Every method the core may call, doing nothing: subclass and override."""

    def configure(self):
        """At the first bind() or connect(), after the security plugin's."""
        pass

    def stop(self):
        """Once, from rpc.stop()."""
        pass

    def handle_heartbeat(self, user_id, routing_id):
        """For every incoming message that passed authentication."""
        pass

    def handle_timeout(self, user_id, routing_id):
        """Not called by the core: the built-in plugins call it when a peer went silent."""
        pass


@register_heartbeat_backend
class NoOpHeartbeatBackendForClient(BaseHeartbeatBackend):
    """No heartbeating."""

    name = 'noop_heartbeat_backend'
    serves = 'client'
    _pseud_noop = True


@register_heartbeat_backend
class NoOpHeartbeatBackendForServer(NoOpHeartbeatBackendForClient):
    """No heartbeating, on a server."""

    serves = 'server'


@register_heartbeat_backend
class TestingHeartbeatBackendForClient(BaseHeartbeatBackend):
    """Sends a HEARTBEAT to its server every ``interval`` seconds."""

    name = 'testing_heartbeat_backend'
    serves = 'client'
    interval = 0.1

    def configure(self):
        self.task = self.rpc.create_periodic_callback(self.send_heartbeat, self.interval)

    def send_heartbeat(self):
        self.rpc.send_message([identity(self.rpc.peer_routing_id), EMPTY_DELIMITER, VERSION,
                               b'', HEARTBEAT, b''])

    def stop(self):
        task = getattr(self, 'task', None)
        if task is not None:
            task.kill()


@register_heartbeat_backend
class TestingHeartbeatBackendForServer(BaseHeartbeatBackend):
    """Publishes each heartbeat's user id on a PUB socket bound to
    ``endpoint``, and ``Gone <repr of id>`` after ``max_silence`` seconds
    without one from that peer."""

    name = 'testing_heartbeat_backend'
    serves = 'server'
    endpoint = 'ipc://testing_heartbeating_backend'
    max_silence = 0.2

    def __init__(self, rpc):
        super().__init__(rpc)
        self.timeouts = {}
        self.publisher = None

    def configure(self):
        self.publisher = self.rpc.context.socket(_pseud.PUB)
        self.publisher.linger = 0
        self.publisher.bind(self.endpoint)

    def handle_heartbeat(self, user_id, routing_id):
        self.publisher.send(user_id)
        previous = self.timeouts.pop(user_id, None)
        if previous is not None:
            previous.kill()
        self.timeouts[user_id] = self.rpc.create_later_callback(
            lambda: self.handle_timeout(user_id, routing_id), self.max_silence)

    def handle_timeout(self, user_id, routing_id):
        self.timeouts.pop(user_id, None)
        self.publisher.send(('Gone %r' % (user_id,)).encode('utf-8'))

    def stop(self):
        for task in self.timeouts.values():
            task.kill()
        self.timeouts.clear()
        if self.publisher is not None:
            self.publisher.close()


# pseud-native's earlier names of the same classes
NoOpHeartbeatBackend = NoOpHeartbeatBackendForServer
TestingHeartbeatClient = TestingHeartbeatBackendForClient
TestingHeartbeatServer = TestingHeartbeatBackendForServer
