"""The benchmark driver: every row, every scenario, repetitions interleaved
(so that all rows see the same machine), medians, ratios, targets, JSON.

    python bench/suite.py --native-python PY --native-path DIR \\
        --peers-python PY --raw-c BIN [--repeat N] [--seconds S] [--quick]

Each measurement is a responder process and a caller process (see
control.py for how they talk to this driver), killed in a finally block;
every wait is bounded."""
import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from scenarios import MEGABYTE, SCENARIOS

HERE = os.path.dirname(os.path.abspath(__file__))
ROWS = ('raw-c', 'raw-pyzmq-gevent', 'pseud-1.0.1', 'zerorpc', 'mprpc', 'pseud-native')
NATIVE = 'pseud-native'
PYTHON_PEERS = ('raw-pyzmq-gevent', 'pseud-1.0.1', 'zerorpc', 'mprpc')
RSS_ROWS = ('raw-c', 'raw-pyzmq-gevent', NATIVE)     # 1M calls in reasonable time
LINE_TIMEOUT = 60


class Peer:
    """A child process whose stdout lines are JSON, read with a timeout."""

    def __init__(self, argv, env):
        self.stderr = tempfile.TemporaryFile(mode='w+')
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr,
                                     text=True, bufsize=1)
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def read(self, timeout=LINE_TIMEOUT):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError('no answer within %ss%s' % (timeout, self.tail()))
        if line is None:
            raise RuntimeError('exited (%s)%s' % (self.proc.wait(5), self.tail()))
        return json.loads(line)

    def send(self, line):
        self.proc.stdin.write(line + '\n')
        self.proc.stdin.flush()

    def ask(self):
        self.send('stat')
        return self.read()

    def tail(self):
        self.stderr.seek(0)
        text = self.stderr.read().strip()
        return (': ' + text.splitlines()[-1]) if text else ''

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.stderr.close()


class Launcher:
    """The command lines of each row's processes."""

    def __init__(self, args):
        self.args = args
        native_env = dict(os.environ, PYTHONPATH=os.pathsep.join([args.native_path, HERE]))
        peers_env = dict(os.environ, PYTHONPATH=HERE)
        self.env = {row: peers_env for row in PYTHON_PEERS}
        self.env[NATIVE] = native_env
        self.env['raw-c'] = dict(os.environ)
        self.python = {row: args.peers_python for row in PYTHON_PEERS}
        self.python[NATIVE] = args.native_python

    def serve(self, row, mode, endpoint):
        if row == 'raw-c':
            return Peer([self.args.raw_c, 'serve', mode, endpoint], self.env[row])
        return Peer([self.python[row], os.path.join(HERE, 'peer.py'), 'serve', row,
                     mode, endpoint], self.env[row])

    def call(self, row, scenario, mode, endpoint):
        seconds = str(self.args.seconds)
        if row == 'raw-c':
            return Peer([self.args.raw_c, 'call', scenario, mode, endpoint, seconds],
                        self.env[row])
        return Peer([self.python[row], os.path.join(HERE, 'peer.py'), 'call', row,
                     scenario, mode, endpoint, '--seconds', seconds], self.env[row])

    def broken(self, row):
        """Why a row cannot run here (its package missing), or None."""
        if row == 'raw-c':
            return None if os.access(self.args.raw_c, os.X_OK) else 'raw_peer not compiled'
        code = 'import rows; rows.load(%r)' % row
        out = subprocess.run([self.python[row], '-c', code], env=self.env[row], cwd=HERE,
                             capture_output=True, text=True, timeout=60)
        if out.returncode == 0:
            return None
        return 'not installed: ' + (out.stderr.strip().splitlines() or ['?'])[-1]


def measure(launcher, row, scenario):
    """One responder + one caller; returns the figures of one run."""
    any_port = 'tcp://127.0.0.1:*'
    peers = []
    try:
        if scenario.reverse:
            caller = launcher.call(row, scenario.name, 'bind', any_port)
            peers.append(caller)
            first = caller.read()
            if first.get('event') == 'n/a':
                return {'na': first['reason']}
            responder = launcher.serve(row, 'connect', first['endpoint'])
            peers.append(responder)
            responder.read()
        else:
            responder = launcher.serve(row, 'bind', any_port)
            peers.append(responder)
            endpoint = responder.read()['endpoint']
            caller = launcher.call(row, scenario.name, 'connect', endpoint)
            peers.append(caller)
        ready = caller.read()
        if ready.get('event') == 'n/a':
            return {'na': ready['reason']}
        server_start = responder.ask()
        rss = [{'calls': 0, 'client_kb': ready['rss_kb'], 'server_kb': server_start['rss_kb']}]
        caller.send('go')
        while True:
            event = caller.read(timeout=LINE_TIMEOUT + 4 * launcher.args.seconds)
            server = responder.ask()
            rss.append({'calls': event['calls'], 'client_kb': event['rss_kb'],
                        'server_kb': server['rss_kb']})
            if event['event'] == 'done':
                break
            caller.send('go')
        calls = event['calls']
        client_cpu = event.get('children_cpu', event['cpu'] - ready['cpu'])
        rate = calls / event['seconds']
        if scenario.unit == 'MB/s':
            rate = rate * len(MEGABYTE) / 1e6
        return {'rate': rate, 'calls': calls,
                'client_us': 1e6 * client_cpu / calls,
                'server_us': 1e6 * (server['cpu'] - server_start['cpu']) / calls,
                'rss': rss}
    except Exception as exc:
        return {'error': '%s %s: %s' % (row, scenario.name, exc)}
    finally:
        for peer in reversed(peers):
            peer.kill()


# ------------------------------------------------------------------ report

def summarize(runs):
    """Median and spread of the rates, medians of the CPU figures."""
    good = [r for r in runs if 'rate' in r]
    if not good:
        return {'na': next((r.get('na') or r.get('error') for r in runs), 'no run')}
    rates = [r['rate'] for r in good]
    med = statistics.median(rates)
    out = {'median': med, 'spread': (max(rates) - min(rates)) / med if med else 0.0,
           'runs': rates,
           'client_us': statistics.median(r['client_us'] for r in good),
           'server_us': statistics.median(r['server_us'] for r in good)}
    if len(good) < len(runs):
        out['failed_runs'] = [r.get('error') for r in runs if 'rate' not in r]
    if 'rss' in good[-1]:
        out['rss'] = good[-1]['rss']
    return out


def print_tables(results, scenarios):
    for name in scenarios:
        scenario = SCENARIOS[name]
        table = results[name]
        print('\n## %s — %s (%s, tcp loopback)' % (name, scenario.title, scenario.unit))
        print('%-17s %11s %7s %10s %10s %9s' % ('row', scenario.unit, 'spread',
                                               'cli us/c', 'srv us/c', 'native/row'))
        native = table.get(NATIVE, {})
        for row, s in table.items():
            if 'median' not in s:
                print('%-17s %11s   %s' % (row, 'n/a', s['na'][:90]))
                continue
            ratio = ('%8.2fx' % (native['median'] / s['median'])
                     if 'median' in native and row != NATIVE else '')
            print('%-17s %11.1f %6.0f%% %10.1f %10.1f %9s' % (
                row, s['median'], 100 * s['spread'], s['client_us'], s['server_us'], ratio))
        print('%-17s %11s   %s' % ('(inproc)', 'n/a', 'client and server are separate '
                                   'processes here; inproc needs one process'))
    if 'rss-1M' in results:
        print('\n## RSS (KiB) around 1,000,000 pipelined calls (last repetition)')
        print('%-17s %10s %10s %10s %10s %10s %10s %8s' % (
            'row', 'cli start', 'cli 500k', 'cli 1M', 'srv start', 'srv 500k', 'srv 1M', 'growth'))
        for row, s in results['rss-1M'].items():
            if 'rss' not in s:
                print('%-17s %10s   %s' % (row, 'n/a', s['na'][:80]))
                continue
            r = s['rss']
            growth = max(r[-1]['client_kb'] - r[-2]['client_kb'],
                         r[-1]['server_kb'] - r[-2]['server_kb'])
            print('%-17s %10d %10d %10d %10d %10d %10d %+8d' % (
                row, r[0]['client_kb'], r[-2]['client_kb'], r[-1]['client_kb'],
                r[0]['server_kb'], r[-2]['server_kb'], r[-1]['server_kb'], growth))


def targets(results):
    """The project's targets, each (text, met or None when unmeasured, detail)."""
    def med(scenario, row):
        return results.get(scenario, {}).get(row, {}).get('median')

    def ratio(scenario, row, factor, text):
        a, b = med(scenario, NATIVE), med(scenario, row)
        if a is None or b is None:
            return (text, None, 'not measured')
        return (text, a >= factor * b, '%.2fx' % (a / b))

    out = [ratio('sequential', 'raw-c', 0.85, 'sequential >= 0.85 x raw-c'),
           ratio('pipelined', 'raw-c', 0.35, 'pipelined >= 0.35 x raw-c')]
    for row in PYTHON_PEERS:
        out.append(ratio('pipelined', row, 3.0, 'pipelined >= 3 x %s' % row))
    out.append(ratio('bulk-1MB', 'raw-c', 0.6, '1 MB >= 0.6 x raw-c MB/s'))
    pipe = results.get('pipelined', {})
    if 'server_us' in pipe.get(NATIVE, {}) and 'server_us' in pipe.get('raw-c', {}):
        a, b = pipe[NATIVE]['server_us'], pipe['raw-c']['server_us']
        out.append(('server CPU per pipelined call <= 4 x raw-c', a <= 4 * b,
                    '%.1f vs %.1f us = %.2fx' % (a, b, a / b)))
    rss = results.get('rss-1M', {}).get(NATIVE, {}).get('rss')
    if rss:
        mid, end = rss[-2], rss[-1]
        for side in ('client', 'server'):
            grow = end[side + '_kb'] - mid[side + '_kb']
            out.append(('%s RSS no growth 500k -> 1M' % side, grow <= 0,
                        '%+d KiB' % grow))
    else:
        out.append(('RSS no growth 500k -> 1M', None, 'not measured'))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--native-python', required=True)
    parser.add_argument('--native-path', required=True)
    parser.add_argument('--peers-python', required=True)
    parser.add_argument('--raw-c', required=True)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--seconds', type=float, default=1.0)
    parser.add_argument('--quick', action='store_true',
                        help='one repetition of 0.5 s, no 1M-call RSS run')
    parser.add_argument('--only', default=None, help='comma-separated scenarios')
    parser.add_argument('--json', default=None)
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.seconds = 1, 0.5
    names = [n for n in SCENARIOS if not (args.quick and n == 'rss-1M')]
    if args.only:
        names = args.only.split(',')
    launcher = Launcher(args)
    began = time.time()
    broken = {row: launcher.broken(row) for row in ROWS}
    for row, why in broken.items():
        if why:
            print('%s: %s' % (row, why), flush=True)

    runs = {(n, row): [] for n in names for row in ROWS}
    for rep in range(args.repeat):
        for name in names:
            for row in ROWS:
                if broken[row]:
                    runs[name, row].append({'na': broken[row]})
                elif name == 'rss-1M' and row not in RSS_ROWS:
                    runs[name, row].append({'na': 'run for %s only, to keep the suite '
                                                  'short' % ', '.join(RSS_ROWS)})
                elif name == 'rss-1M' and rep:
                    runs[name, row].append({'skip': True})       # once is enough
                else:
                    result = measure(launcher, row, SCENARIOS[name])
                    if 'error' in result:
                        print('ERROR', result['error'], flush=True)
                    runs[name, row].append(result)
        print('repetition %d done (%.0f s)' % (rep + 1, time.time() - began), flush=True)

    results = {n: {row: summarize([r for r in runs[n, row] if 'skip' not in r])
                   for row in ROWS} for n in names}
    print('\n# pseud-native benchmark: %d repetition(s) of %.1f s, %.0f s in all'
          % (args.repeat, args.seconds, time.time() - began))
    print('# rates are medians; spread = (max-min)/median; us/c = CPU microseconds per call '
          'of each process (its own getrusage), client = sum of its processes')
    print_tables(results, names)
    print('\n## targets (tcp loopback, 30-byte payload)')
    checks = targets(results)
    for text, met, detail in checks:
        print('%-46s %-8s %s' % (text, {True: 'met', False: 'NOT MET', None: 'n/a'}[met],
                                  detail))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as fh:
            json.dump({'seconds': args.seconds, 'repeat': args.repeat, 'results': results,
                       'targets': [{'target': t, 'met': m, 'detail': d}
                                   for t, m, d in checks]}, fh, indent=2)
        print('\nJSON: %s' % args.json)


if __name__ == '__main__':
    sys.path.insert(0, HERE)
    main()
