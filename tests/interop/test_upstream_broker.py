"""Unmodified upstream pseud 1.0.1 clients through our broker
(docs/guide/scaling.rst): they connect to the frontend as to Server('svc')
and cannot tell a pool of workers from one server.

Upstream runs in its own process through test_upstream's fixtures (bounded
cooperative waits, peers killed in finalizers); the broker and its workers
run on this process's hub.
"""
import datetime

import gevent
import pytest

import pseud

from naming import unique
from test_upstream import (  # noqa: F401  (fixtures are used by name)
    DATES, call, pytestmark, register_ours, upstream, upstream_client, value_of)
from test_upstream_security import upstream_plain


@pytest.fixture
def brokered():
    """brokered(n_workers, **broker_options) -> (broker, workers), each worker
    serving test_upstream's register_ours set plus `which` (its index)."""
    made = []

    def factory(n_workers, **options):
        broker = pseud.Broker(unique('svc'), frontend='tcp://127.0.0.1:*',
                              backend='tcp://127.0.0.1:*', **options).start()
        made.append(broker)
        workers = []
        for index in range(n_workers):
            worker = pseud.Server(broker.service_id)
            made.append(worker)
            register_ours(worker)
            worker.register_rpc(name='which')(lambda index=index: index)
            worker.connect_broker(broker.backend_endpoint)
            worker.start()
            workers.append(worker)
        deadline = gevent.Timeout(10)
        with deadline:
            while len(broker.stats()['workers']) < n_workers:
                gevent.sleep(0.02)
        return broker, workers

    yield factory
    for thing in made:
        thing.stop()


def test_upstream_client_through_the_broker(brokered, upstream_client):
    broker, _ = brokered(2)
    calls = ([call('echo', 1, 'two', key=b'v'), call('string.upper', 'abc'),
              call('fail', 'no via broker'), call('no.such.thing'),
              call('add_days', DATES['utc'], 1)]
             + [call('slow', i) for i in range(8)] + [call('which') for _ in range(4)])
    peer = upstream_client(broker.frontend_endpoint, broker.service_id, calls,
                           concurrent=True)
    results = peer.wait_for('results')['results']
    assert value_of(results[0]) == ((1, 'two'), {'key': b'v'})
    assert value_of(results[1]) == 'ABC'
    assert results[2]['error'] == 'ValueError' and 'no via broker' in results[2]['message']
    assert results[3]['error'] == 'ServiceNotFoundError'
    assert value_of(results[4]) == DATES['utc'] + datetime.timedelta(days=1)
    assert [value_of(r) for r in results[5:13]] == [i * 2 for i in range(8)]
    assert {value_of(r) for r in results[13:]} <= {0, 1}
    # both workers served this one upstream client
    served = [w['served'] for w in broker.stats()['workers'].values()]
    assert len(served) == 2 and all(served) and sum(served) == len(calls)


def test_upstream_plain_client_through_a_secured_broker(brokered, upstream_client):
    broker, workers = brokered(1, security_plugin='trusted_peer')
    peer = upstream_client(broker.frontend_endpoint, broker.service_id,
                           [call('whoami'), call('string.upper', 'ok')],
                           security=upstream_plain('trusted_peer', 'client1', 'x'),
                           serve_for=40)
    results = peer.wait_for('results')['results']
    assert value_of(results[0]) == b'client1'
    assert value_of(results[1]) == 'OK'
    peer.wait_for('serving')
    # a worker calls the upstream client back through the broker
    them = workers[0].send_to('client1')
    assert them.client.hello('worker').get() == 'hello worker from upstream client'
    assert them.plugin.login().get() == b'client1'
