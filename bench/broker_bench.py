"""The broker's scenarios (docs/guide/scaling.rst), pseud-native only:

  direct-sequential / broker-sequential   echo(b'x' * 30), one call in flight
  direct-pipelined  / broker-pipelined    100 calls sent, then their results
  cpu-64 x N workers                      a ~1 ms pure-Python handler, 64 calls
                                          kept in flight by 64 greenlets, through
                                          the broker to 1, 2 and 4 worker processes

Every role is its own process (this file with a role argument), over tcp
loopback on ports the OS chooses. The broker's own CPU time per routed call
is read from /proc, to say how many calls/s one broker core could route.

    python bench/broker_bench.py [--seconds 2] [--repeat 3] [--json FILE]

The roles run alone too (scripts/netns.sh runs them in network namespaces):
    broker_bench.py broker [--host ADDR]          prints 'frontend backend'
    broker_bench.py worker BACKEND --rounds N     prints 'ready'
    broker_bench.py client FRONTEND --scenario S  prints 'warm', waits for a
                                                  line on stdin, prints JSON

Run it with the pseud build on PYTHONPATH (bash bench/run_broker.sh does).
Only ratios mean anything on a shared machine.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.abspath(__file__)
SERVICE = 'bench'
PAYLOAD = b'x' * 30
BATCH = 100
IN_FLIGHT = 64


def burn(n):
    """Pure-Python CPU work: n rounds of integer arithmetic."""
    x = 0
    for i in range(n):
        x = (x * 31 + i) % 1000003
    return x


def calibrate(target=0.001):
    """Rounds of burn() taking about `target` seconds on this machine."""
    n = 1000
    while True:
        took = []
        for _ in range(5):      # the fastest try: the least disturbed by other load
            started = time.perf_counter()
            burn(n)
            took.append(time.perf_counter() - started)
        if min(took) > 0.02:
            return max(1, int(n * target / min(took)))
        n *= 2


def _register(server, rounds):
    server.register_rpc(name='echo')(lambda data: data)
    server.register_rpc(name='cpu')(lambda: burn(rounds))


# ---------------------------------------------------------------- roles

def role_server(args):
    import gevent
    import pseud
    server = pseud.Server(SERVICE)
    _register(server, args.rounds)
    print(server.bind('tcp://%s:*' % args.host), flush=True)
    server.start()
    gevent.wait()


def role_worker(args):
    import gevent
    import pseud
    server = pseud.Server(SERVICE)
    _register(server, args.rounds)
    server.connect_broker(args.endpoint)
    server.start()
    print('ready', flush=True)
    gevent.wait()


def role_broker(args):
    import pseud
    broker = pseud.Broker(SERVICE, frontend='tcp://%s:*' % args.host,
                          backend='tcp://%s:*' % args.host, max_in_flight=args.max_in_flight)
    print(broker.frontend_endpoint, broker.backend_endpoint, flush=True)
    broker.run()


def role_client(args):
    import gevent
    import pseud
    client = pseud.Client(SERVICE, timeout=30)
    client.connect(args.endpoint)
    deadline = time.monotonic() + 30
    while True:                                  # until the service answers
        try:
            client.echo(PAYLOAD).get()
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            gevent.sleep(0.05)
    print('warm', flush=True)
    sys.stdin.readline()                         # the driver says go
    calls = 0
    started = time.monotonic()
    end = started + args.seconds
    if args.scenario == 'sequential':
        while time.monotonic() < end:
            client.echo(PAYLOAD).get()
            calls += 1
    elif args.scenario == 'pipelined':
        while time.monotonic() < end:
            futures = [client.echo(PAYLOAD) for _ in range(BATCH)]
            for f in futures:
                f.get()
            calls += BATCH
    else:                                        # cpu: 64 greenlets, sequential calls
        counts = [0] * IN_FLIGHT

        def loop(k):
            while time.monotonic() < end:
                client.cpu().get()
                counts[k] += 1
        gevent.joinall([gevent.spawn(loop, k) for k in range(IN_FLIGHT)])
        calls = sum(counts)
    elapsed = time.monotonic() - started
    print(json.dumps({'calls': calls, 'seconds': elapsed}), flush=True)
    client.stop()


# ---------------------------------------------------------------- driver

def cpu_of(pid):
    """User + system CPU seconds of process `pid` (Linux /proc)."""
    with open('/proc/%d/stat' % pid) as fh:
        fields = fh.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


class Proc:
    def __init__(self, *argv, stdin=False):
        self.p = subprocess.Popen([sys.executable, HERE] + [str(a) for a in argv],
                                  stdout=subprocess.PIPE, stdin=subprocess.PIPE if stdin else None,
                                  text=True)

    def line(self):
        text = self.p.stdout.readline()
        if not text:
            raise RuntimeError('a bench process exited early: %r' % (self.p.args,))
        return text.strip()

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


def one_run(scenario, workers, seconds, rounds, max_in_flight):
    """calls/s of one measurement; workers=0: direct to a server."""
    procs = []
    try:
        broker_pid = None
        if workers == 0:
            server = Proc('server', '--rounds', rounds)
            procs.append(server)
            endpoint = server.line()
        else:
            broker = Proc('broker', '--max-in-flight', max_in_flight)
            procs.append(broker)
            endpoint, backend = broker.line().split()
            broker_pid = broker.p.pid
            for _ in range(workers):
                worker = Proc('worker', backend, '--rounds', rounds)
                procs.append(worker)
                worker.line()
            time.sleep(0.3)                 # their probes reach the broker
        client = Proc('client', endpoint, '--scenario', scenario, '--seconds', seconds,
                      '--workers', workers, stdin=True)
        procs.append(client)
        client.line()
        cpu_before = cpu_of(broker_pid) if broker_pid else 0.0
        client.p.stdin.write('go\n')
        client.p.stdin.flush()
        result = json.loads(client.line())
        broker_cpu = (cpu_of(broker_pid) - cpu_before) if broker_pid else None
        rate = result['calls'] / result['seconds']
        per_call = broker_cpu / result['calls'] if broker_cpu is not None and result['calls'] else None
        return rate, per_call
    finally:
        for p in procs:
            p.kill()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('role', nargs='?', default='drive',
                        choices=['drive', 'server', 'worker', 'broker', 'client'])
    parser.add_argument('endpoint', nargs='?')
    parser.add_argument('--scenario', default='sequential')
    parser.add_argument('--seconds', type=float, default=2.0)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--rounds', type=int, default=0)
    parser.add_argument('--workers', type=int, default=0)
    parser.add_argument('--max-in-flight', type=int, default=16)
    parser.add_argument('--host', default='127.0.0.1', help='address to bind (roles)')
    parser.add_argument('--json')
    args = parser.parse_args()
    if args.role != 'drive':
        return globals()['role_' + args.role](args)

    rounds = calibrate()
    plan = [('direct-sequential', 'sequential', 0), ('broker-sequential', 'sequential', 1),
            ('direct-pipelined', 'pipelined', 0), ('broker-pipelined', 'pipelined', 1),
            ('cpu-64 direct (1 server)', 'cpu', 0),
            ('cpu-64 x 1 worker', 'cpu', 1), ('cpu-64 x 2 workers', 'cpu', 2),
            ('cpu-64 x 4 workers', 'cpu', 4)]
    print('burn(%d) ~ 1 ms; %d x %.1fs per row, median; max_in_flight=%d; load: %s'
          % (rounds, args.repeat, args.seconds, args.max_in_flight,
             ' '.join(open('/proc/loadavg').read().split()[:3])))
    # repetitions go round the whole plan, so that each ratio below pairs
    # runs made close together in time (the load of a shared machine drifts)
    runs = {label: [] for label, _, _ in plan}
    for rep in range(args.repeat):
        for label, scenario, workers in plan:
            runs[label].append(one_run(scenario, workers, args.seconds, rounds,
                                       args.max_in_flight))
        print('repetition %d/%d done (load %s)' % (rep + 1, args.repeat,
              ' '.join(open('/proc/loadavg').read().split()[:3])), flush=True)
    results = {}
    for label, _, _ in plan:
        rate = statistics.median(r for r, _ in runs[label])
        per_call = [c for _, c in runs[label] if c is not None]
        cpu_us = statistics.median(per_call) * 1e6 if per_call else None
        results[label] = {'calls_per_s': rate, 'broker_cpu_us_per_call': cpu_us,
                          'runs': [r for r, _ in runs[label]]}
        print('%-28s %10.0f calls/s%s' % (label, rate, '' if cpu_us is None else
                                          '   broker CPU %.1f us/call' % cpu_us), flush=True)

    def paired(a, b):
        """Median over repetitions of rate(a) / rate(b)."""
        return statistics.median(x[0] / y[0] for x, y in zip(runs[a], runs[b]))
    ratios = {
        'broker/direct sequential': paired('broker-sequential', 'direct-sequential'),
        'broker/direct pipelined': paired('broker-pipelined', 'direct-pipelined'),
        'cpu 1 worker / direct': paired('cpu-64 x 1 worker', 'cpu-64 direct (1 server)'),
        'cpu 2 workers / 1 worker': paired('cpu-64 x 2 workers', 'cpu-64 x 1 worker'),
        'cpu 4 workers / 1 worker': paired('cpu-64 x 4 workers', 'cpu-64 x 1 worker'),
    }
    print()
    for name, value in ratios.items():
        print('%-26s %.2fx   (median of paired repetitions)' % (name, value))
    us = [v['broker_cpu_us_per_call'] for v in results.values()
          if v['broker_cpu_us_per_call']]
    if us:
        best = min(us)
        print('broker CPU per call: %.1f-%.1f us -> one broker core routes ~%.0f calls/s'
              % (best, max(us), 1e6 / best))
    if args.json:
        with open(args.json, 'w') as fh:
            json.dump({'rounds': rounds, 'results': results, 'ratios': ratios}, fh, indent=1)


if __name__ == '__main__':
    main()
