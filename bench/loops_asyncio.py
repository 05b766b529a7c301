"""The scenarios' call loops for rows whose callers are asyncio-based:
same shapes as loops_gevent, with ``await caller.call(payload)``."""
import asyncio

BATCH = 100


async def sequential(caller, payload, plan, batch=BATCH):
    calls = 0
    while plan.more(calls):
        for _ in range(batch):
            if await caller.call(payload) != payload:
                raise AssertionError('wrong echo')
        calls += batch
    return calls


async def pipelined(caller, payload, plan, in_flight=100):
    calls = 0
    while plan.more(calls):
        results = await asyncio.gather(*[caller.call(payload) for _ in range(in_flight)])
        if any(r != payload for r in results):
            raise AssertionError('wrong echo')
        calls += in_flight
    return calls


async def concurrent(callers, payload, plan):
    state = {'calls': 0, 'running': True}

    async def worker(caller):
        while state['running']:
            if await caller.call(payload) != payload:
                raise AssertionError('wrong echo')
            state['calls'] += 1

    tasks = [asyncio.ensure_future(worker(c)) for c in callers]
    try:
        while plan.more(state['calls']):
            await asyncio.sleep(0.02)
            for t in tasks:
                if t.done() and t.exception() is not None:
                    raise t.exception()
    finally:
        state['running'] = False
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
    return state['calls']
