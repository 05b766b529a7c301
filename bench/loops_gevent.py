"""The scenarios' call loops for rows whose callers are gevent-based.

A caller has ``call(payload)`` (returns the result) and, when it can have
several calls in flight, ``call_async(payload)`` (returns a future with
``get()``)."""
import gevent

BATCH = 100


def sequential(caller, payload, plan, batch=BATCH):
    calls = 0
    while plan.more(calls):
        for _ in range(batch):
            if caller.call(payload) != payload:
                raise AssertionError('wrong echo')
        calls += batch
    return calls


def pipelined(caller, payload, plan, in_flight=100):
    calls = 0
    while plan.more(calls):
        futures = [caller.call_async(payload) for _ in range(in_flight)]
        for future in futures:
            if future.get() != payload:
                raise AssertionError('wrong echo')
        calls += in_flight
    return calls


def concurrent(callers, payload, plan):
    """One greenlet per caller (callers may be the same object), each
    making sequential calls until the plan says stop."""
    state = {'calls': 0, 'running': True}

    def worker(caller):
        while state['running']:
            if caller.call(payload) != payload:
                raise AssertionError('wrong echo')
            state['calls'] += 1

    workers = [gevent.spawn(worker, c) for c in callers]
    try:
        while plan.more(state['calls']):
            gevent.sleep(0.02)
            for w in workers:
                if w.dead and w.exception is not None:
                    raise w.exception
    finally:
        state['running'] = False
        gevent.joinall(workers, timeout=30, raise_error=True)
    return state['calls']

