"""One benchmark process: the responder or the caller of one row, or a
broker or one of its workers (the broker's scenarios).

    peer.py serve ROW bind|connect ENDPOINT [--burn ROUNDS]
    peer.py call ROW SCENARIO bind|connect ENDPOINT [--seconds S | --calls N]
    peer.py broker ROW ENDPOINT --workers N
    peer.py worker ROW BACKEND [--burn ROUNDS]

Speaks the line protocol of control.py with the driver (suite.py).
``--burn ROUNDS`` serves ``burn`` too (burn.py: the cpu scenarios)."""
import argparse
import asyncio
import json
import os
import select
import sys
import time

import control
import rows
from procstat import snapshot
from scenarios import PROCESSES, RSS_CHECKPOINTS, RSS_SCENARIO, SCENARIOS

WARM_TIMEOUT = 30.0


class Runtime:
    """How to run a row's functions: directly (gevent) or on an asyncio loop."""

    def __init__(self, row):
        self.row = row
        if row.KIND == 'asyncio':
            import loops_asyncio as loops
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            self.do = self.loop.run_until_complete
        else:
            import loops_gevent as loops
            self.loop = None
            self.do = lambda value: value
        self.loops = loops

    def warm(self, caller, payload):
        """First call, retried until the peer is reachable (bounded)."""
        deadline = time.monotonic() + WARM_TIMEOUT
        while True:
            try:
                return self.call_within(caller, payload, 1.0)
            except self.failures as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError('peer unreachable: %r' % (exc,))
                self.sleep(0.05)

    def call_within(self, caller, payload, seconds):
        if self.loop is not None:
            return self.do(asyncio.wait_for(caller.call(payload), seconds))
        import gevent
        with gevent.Timeout(seconds):
            return caller.call(payload)

    @property
    def failures(self):
        if self.loop is not None:
            return (Exception,)
        import gevent
        return (Exception, gevent.Timeout)

    def sleep(self, seconds):
        if self.loop is not None:
            self.do(asyncio.sleep(seconds))
        else:
            import gevent
            gevent.sleep(seconds)

    def idle_forever(self):
        if self.loop is not None:
            self.loop.run_forever()
        import gevent
        while True:
            gevent.sleep(3600)


def serve(rt, bind, endpoint, burn_rounds):
    if burn_rounds:
        endpoint = rt.do(rt.row.serve(endpoint, bind, burn_rounds))
    else:
        endpoint = rt.do(rt.row.serve(endpoint, bind))
    control.emit(endpoint=endpoint)
    control.answer_stats_forever()
    rt.idle_forever()


def serve_broker(rt, endpoint, workers):
    """The broker: prints its frontend (as ``endpoint``) and backend, then
    ``{"event": "joined"}`` once ``workers`` workers have joined it; then
    answers the driver's snapshot requests like a responder."""
    import gevent
    frontend, backend, broker = rt.row.serve_broker(endpoint)
    control.emit(endpoint=frontend, backend=backend)
    while len(broker.stats()['workers']) < workers:
        gevent.sleep(0.02)
    control.emit(event='joined', workers=workers)
    control.answer_stats_forever()
    rt.idle_forever()


def serve_worker(rt, backend, burn_rounds):
    rt.row.serve_worker(backend, burn_rounds)
    control.emit(event='serving')
    control.answer_stats_forever()
    rt.idle_forever()


def connect(rt, scenario, endpoint):
    """A caller of the scenario's method (rows without ``burn`` only ever
    get ``echo``)."""
    if scenario.method == 'echo':
        return rt.do(rt.row.connect(endpoint))
    return rt.do(rt.row.connect(endpoint, scenario.method))


def run_loop(rt, scenario, caller, plan, make_caller):
    loops = rt.loops
    if scenario.loop == 'sequential':
        return rt.do(loops.sequential(caller, scenario.payload, plan, scenario.batch))
    if scenario.loop == 'pipelined':
        return rt.do(loops.pipelined(caller, scenario.payload, plan))
    if scenario.loop == 'concurrent':
        callers = [caller] + [caller if rt.row.SHARED_CALLER else make_caller()
                              for _ in range(scenario.greenlets - 1)]
        return rt.do(loops.concurrent(callers, scenario.payload, plan))
    raise ValueError(scenario.loop)


def call(rt, scenario, bind, endpoint, seconds, count=None):
    why = rt.row.NOT_SUPPORTED.get(scenario.name)
    if why:
        control.emit(event='n/a', reason=why)
        return
    if scenario.loop == 'processes':
        return call_from_processes(rt, scenario, endpoint, seconds)
    if bind:
        endpoint, caller = rt.do(rt.row.reverse_caller(endpoint))
        control.emit(endpoint=endpoint)
    else:
        caller = connect(rt, scenario, endpoint)
    rt.warm(caller, scenario.payload)
    if scenario.name == RSS_SCENARIO:
        plan = control.Plan(checkpoints=RSS_CHECKPOINTS)
    elif count:
        plan = control.Plan(checkpoints=(count,))      # a fixed number of calls
    else:
        plan = control.Plan(seconds=seconds)
    plan.begin()
    plan.calls = run_loop(rt, scenario, caller, plan,
                          lambda: connect(rt, scenario, endpoint))
    plan.end()
    os._exit(0)      # no lingering sockets or loops at exit


def _read_exactly(fd, count, timeout):
    data = b''
    deadline = time.monotonic() + timeout
    while len(data) < count:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError('children: %d of %d bytes' % (len(data), count))
        chunk = os.read(fd, count - len(data))
        if not chunk:
            raise RuntimeError('children: pipe closed after %d bytes' % len(data))
        data += chunk
    return data


def _child(rt, scenario, endpoint, seconds, ready_w, go_r, result_w):
    try:
        caller = connect(rt, scenario, endpoint)
        rt.warm(caller, scenario.payload)
        os.write(ready_w, b'r')
        os.read(go_r, 1)
        before = snapshot()
        plan = control.Plan(seconds=seconds)
        plan.started()
        calls = rt.do(rt.loops.sequential(caller, scenario.payload, plan, 10))
        line = json.dumps({'calls': calls, 'seconds': time.perf_counter() - plan.start,
                           'cpu': snapshot()['cpu'] - before['cpu']})
        os.write(result_w, (line + '\n').encode())
    except BaseException as exc:
        os.write(result_w, (json.dumps({'error': repr(exc)}) + '\n').encode())
    finally:
        os._exit(0)


def call_from_processes(rt, scenario, endpoint, seconds):
    """PROCESSES children forked before any socket or loop exists (so they
    share the imported code and stay light), started together."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    result_r, result_w = os.pipe()
    children = []
    for _ in range(PROCESSES):
        pid = os.fork()
        if pid == 0:
            _child(rt, scenario, endpoint, seconds, ready_w, go_r, result_w)
        children.append(pid)
    try:
        _read_exactly(ready_r, PROCESSES, WARM_TIMEOUT + 30)
        control.emit(event='ready', **snapshot())
        control.wait_go()
        os.write(go_w, b'g' * PROCESSES)
        raw = b''
        while raw.count(b'\n') < PROCESSES:
            raw += _read_exactly(result_r, 1, seconds + 60)
        results = [json.loads(line) for line in raw.decode().splitlines()]
        errors = [r['error'] for r in results if 'error' in r]
        if errors:
            raise RuntimeError('client process failed: %s' % errors[0])
        control.emit(event='done', calls=sum(r['calls'] for r in results),
                     seconds=max(r['seconds'] for r in results),
                     children_cpu=sum(r['cpu'] for r in results), **snapshot())
    finally:
        for pid in children:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
    os._exit(0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('role', choices=('serve', 'call', 'broker', 'worker'))
    parser.add_argument('row', choices=[n for n, m in rows.MODULES.items() if m])
    parser.add_argument('rest', nargs='+')
    parser.add_argument('--seconds', type=float, default=1.0)
    parser.add_argument('--calls', type=int, default=None,
                        help='make exactly this many calls after the warm-up')
    parser.add_argument('--burn', type=int, default=0, metavar='ROUNDS',
                        help='serve burn(ROUNDS) too (serve, worker)')
    parser.add_argument('--workers', type=int, default=1,
                        help='broker: how many workers to wait for')
    args = parser.parse_args()
    rt = Runtime(rows.load(args.row))
    if args.role == 'serve':
        mode, endpoint = args.rest
        serve(rt, mode == 'bind', endpoint, args.burn)
    elif args.role == 'broker':
        serve_broker(rt, args.rest[0], args.workers)
    elif args.role == 'worker':
        serve_worker(rt, args.rest[0], args.burn)
    else:
        name, mode, endpoint = args.rest
        call(rt, SCENARIOS[name], mode == 'bind', endpoint, args.seconds, args.calls)


if __name__ == '__main__':
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
