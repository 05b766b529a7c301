"""The benchmark driver: every row, every scenario, repetitions interleaved
(so that all rows see the same machine), medians, ratios, targets, JSON.

    python bench/suite.py --native-python PY --native-path DIR \\
        --peers-python PY --raw-c BIN [--repeat N] [--seconds S] [--quick]

Each measurement is a responder process and a caller process (see
control.py for how they talk to this driver), killed in a finally block;
every wait is bounded. In the broker's scenarios the responder is a broker
process with its worker processes behind it."""
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

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:           # the bench modules, also under python -P
    sys.path.insert(0, HERE)

import burn  # noqa: E402
import machine  # noqa: E402
import reaper  # noqa: E402
from scenarios import (GROUPS, MEGABYTE, MIXED, RSS_CALLS, RSS_EVERY,  # noqa: E402
                       RSS_FROM, RSS_ROWS, RSS_SCENARIO, RSS_TOLERANCE_KB, SCENARIOS)
ROWS = ('raw-c', 'raw-pyzmq-gevent', 'pseud-1.0.1', 'zerorpc', 'mprpc', 'pseud-native', MIXED)
NATIVE = 'pseud-native'
PYTHON_PEERS = ('raw-pyzmq-gevent', 'pseud-1.0.1', 'zerorpc', 'mprpc')
RSS_NA = ('run for %s only: raw-pyzmq-gevent (7k calls/s) timed out before 1M calls '
          'already; 3M pipelined calls would take each Python row 7 to 25 minutes'
          % ', '.join(RSS_ROWS))
LINE_TIMEOUT = 60


class Peer:
    """A child process whose stdout lines are JSON, read with a timeout.

    It runs in a process group of its own (a new session), so that ending
    it ends everything it forked (see reaper.py)."""

    def __init__(self, argv, env, line_timeout=LINE_TIMEOUT):
        self.stderr = tempfile.TemporaryFile(mode='w+')
        self.line_timeout = line_timeout
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr,
                                     text=True, bufsize=1, start_new_session=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def read(self, timeout=None):
        timeout = self.line_timeout if timeout is None else timeout
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

    def finish(self, timeout=120):
        """Let it end by itself (end of stdin), killed if it will not."""
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout)
        except (subprocess.TimeoutExpired, OSError):
            pass
        self.kill()

    def kill(self):
        reaper.kill_group(self.proc.pid)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self.stderr.close()


class Launcher:
    """The command lines of each row's processes. A row is a label; its
    module (rows.MODULES), python and import path may differ by label:
    ``pseud-native@REV`` runs rows/pseud_native.py on another build."""

    def __init__(self, args, token):
        self.args = args
        self.token = token
        base = dict(os.environ, **{reaper.MARK: token})
        native_env = dict(base, PYTHONPATH=os.pathsep.join([args.native_path, HERE]))
        peers_env = dict(base, PYTHONPATH=HERE)
        self.env = {row: peers_env for row in PYTHON_PEERS}
        self.env[NATIVE] = native_env
        self.env['hang'] = self.env[MIXED] = native_env
        self.env['raw-c'] = base
        self.python = {row: args.peers_python for row in PYTHON_PEERS}
        self.python[NATIVE] = self.python['hang'] = self.python[MIXED] = args.native_python
        self.module = {row: row for row in self.env}
        self.module[MIXED] = NATIVE
        if args.compare_path:
            label = args.compare_label
            self.env[label] = dict(base, PYTHONPATH=os.pathsep.join([args.compare_path, HERE]))
            self.python[label] = args.native_python
            self.module[label] = NATIVE
        # role -> a command prefix (a measuring tool) for each process
        # started, and more environment for each (percall.py)
        self.wrap_role = None
        self.extra_env = {}

    def _env(self, row):
        return dict(self.env[row], **self.extra_env)

    def _peer(self, argv, row, role):
        """``role``: client, server, broker or worker."""
        wrap = self.wrap_role(role) if self.wrap_role else []
        return Peer(wrap + argv, self._env(row), self.args.line_timeout)

    def _python_peer(self, row, role, *argv):
        return self._peer([self.python[row], os.path.join(HERE, 'peer.py'), argv[0],
                           self.module[row]] + list(argv[1:]), row, role)

    def _burn(self, scenario):
        """peer.py's option to serve burn(), for the scenarios that call it."""
        if scenario is None or scenario.method != 'burn':
            return []
        return ['--burn', str(self.args.burn_rounds)]

    def serve(self, row, mode, endpoint, scenario=None):
        if row == 'raw-c':
            return self._peer([self.args.raw_c, 'serve', mode, endpoint], row, 'server')
        return self._python_peer(row, 'server', 'serve', mode, endpoint,
                                 *self._burn(scenario))

    def broker(self, row, endpoint, scenario):
        """A broker whose frontend and backend bind at ``endpoint``; it says
        when the scenario's workers have all joined."""
        if row in ('raw-c', MIXED):
            return self._peer([self.args.raw_c, 'broker', endpoint, str(scenario.workers)],
                              row, 'broker')
        return self._python_peer(row, 'broker', 'broker', endpoint, '--workers',
                                 str(scenario.workers))

    def worker(self, row, backend, scenario):
        if row == 'raw-c':
            return self._peer([self.args.raw_c, 'worker', backend], row, 'worker')
        return self._python_peer(row, 'worker', 'worker', backend, *self._burn(scenario))

    def call(self, row, scenario, mode, endpoint, count=None):
        seconds = str(self.args.seconds)
        if row == 'raw-c':
            return self._peer([self.args.raw_c, 'call', scenario, mode, endpoint,
                               str(-count) if count else seconds], row, 'client')
        extra = ['--calls', str(count)] if count else ['--seconds', seconds]
        return self._python_peer(row, 'client', 'call', scenario, mode, endpoint, *extra)

    def broken(self, row):
        """Why a row cannot run here (its package missing), or None."""
        if row in ('raw-c', MIXED) and not os.access(self.args.raw_c, os.X_OK):
            return 'raw_peer not compiled'
        if row == 'raw-c':
            return None
        code = 'import rows; rows.load(%r)' % self.module[row]
        out = subprocess.run([self.python[row], '-c', code], env=self.env[row], cwd=HERE,
                             capture_output=True, text=True, timeout=60)
        if out.returncode == 0:
            return None
        return 'not installed: ' + (out.stderr.strip().splitlines() or ['?'])[-1]


def start_pair(launcher, row, scenario, count=None):
    """Start a responder (and its workers) and a caller; returns
    (responder, workers, caller, peers, n/a reason or None). ``peers``
    lists what was started, for cleanup."""
    any_port = 'tcp://127.0.0.1:*'
    peers = []
    workers = []
    if scenario.workers:
        responder = launcher.broker(row, any_port, scenario)
        peers.append(responder)
        bound = responder.read()
        for _ in range(scenario.workers):
            workers.append(launcher.worker(row, bound['backend'], scenario))
        peers.extend(workers)
        for worker in workers:
            worker.read()
        responder.read()                  # every worker has joined the broker
        caller = launcher.call(row, scenario.name, 'connect', bound['endpoint'], count)
        peers.append(caller)
    elif scenario.reverse:
        caller = launcher.call(row, scenario.name, 'bind', any_port, count)
        peers.append(caller)
        first = caller.read()
        if first.get('event') == 'n/a':
            return None, workers, caller, peers, first['reason']
        responder = launcher.serve(row, 'connect', first['endpoint'])
        peers.append(responder)
        responder.read()
    else:
        responder = launcher.serve(row, 'bind', any_port, scenario)
        peers.append(responder)
        endpoint = responder.read()['endpoint']
        caller = launcher.call(row, scenario.name, 'connect', endpoint, count)
        peers.append(caller)
    return responder, workers, caller, peers, None


def end_peers(launcher, peers):
    """Kill what a measurement started: each process group, then anything
    else carrying the run's marker (a process that left its group)."""
    for peer in reversed(peers):
        peer.kill()
    reaper.sweep(launcher.token)


def measure(launcher, row, scenario):
    """One responder + one caller; returns the figures of one run."""
    peers = []
    try:
        responder, workers, caller, peers, na = start_pair(launcher, row, scenario)
        if na:
            return {'na': na}
        ready = caller.read()
        if ready.get('event') == 'n/a':
            return {'na': ready['reason']}
        server_start = responder.ask()
        workers_start = [worker.ask()['cpu'] for worker in workers]
        rss = [{'calls': 0, 'client_kb': ready['rss_kb'], 'server_kb': server_start['rss_kb']}]
        caller.send('go')
        while True:
            event = caller.read(timeout=launcher.args.line_timeout + 4 * launcher.args.seconds)
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
        out = {'rate': rate, 'calls': calls,
               'client_us': 1e6 * client_cpu / calls,
               'server_us': 1e6 * (server['cpu'] - server_start['cpu']) / calls,
               'rss': rss}
        if workers:       # server_us is the broker's; the workers' together
            workers_end = [worker.ask()['cpu'] for worker in workers]
            out['workers_us'] = 1e6 * (sum(workers_end) - sum(workers_start)) / calls
        return out
    except Exception as exc:
        return {'error': '%s %s: %s' % (row, scenario.name, exc)}
    finally:
        end_peers(launcher, peers)


# ------------------------------------------------------------------ report

def _spread(values):
    """(max - min) / median, or None for fewer than two values."""
    values = list(values)
    if len(values) < 2:
        return None
    med = statistics.median(values)
    return (max(values) - min(values)) / med if med else 0.0


def summarize(runs):
    """Median and spread of the rate and of each CPU figure."""
    good = [r for r in runs if 'rate' in r]
    if not good:
        return {'na': next((r.get('na') or r.get('error') for r in runs), 'no run')}
    rates = [r['rate'] for r in good]
    out = {'median': statistics.median(rates), 'spread': _spread(rates), 'runs': rates}
    for side in ('client_us', 'server_us', 'workers_us'):
        values = [r[side] for r in good if side in r]
        if values:
            out[side] = statistics.median(values)
            out[side + '_spread'] = _spread(values)
    if len(good) < len(runs):
        out['failed_runs'] = [r.get('error') for r in runs if 'rate' not in r]
    if 'rss' in good[-1]:
        out['rss'] = good[-1]['rss']
    return out


def paired_ratios(mine, theirs):
    """Ratios of two rows' rates measured in the same repetitions (one
    after the other): their median and spread. None without a pair."""
    pairs = [a['rate'] / b['rate'] for a, b in zip(mine, theirs)
             if 'rate' in a and 'rate' in b and b['rate']]
    if not pairs:
        return None
    return {'median': statistics.median(pairs), 'spread': _spread(pairs), 'pairs': pairs}


def _pct(spread):
    return '%5.0f%%' % (100 * spread) if spread is not None else '     -'


def runs_row(scenario, row, modules):
    """Whether the scenario is measured for this row (its module). The
    mixed row runs only where raw_peer's broker is, and their bases."""
    if row == MIXED:
        return row in (scenario.rows or ()) or any(
            s.base == scenario.name and row in (s.rows or ()) for s in SCENARIOS.values())
    return scenario.rows is None or modules.get(row, row) in scenario.rows


def not_run(scenario, row, modules):
    """Why the scenario is not measured for this row, or None if it is."""
    if runs_row(scenario, row, modules):
        return None
    if scenario.name == RSS_SCENARIO:
        return RSS_NA
    if scenario.rows:
        return 'run for %s only' % ', '.join(scenario.rows)
    return "run for the broker's echo scenarios and their bases only"


def print_tables(results, scenarios, rows, modules):
    for name in scenarios:
        scenario = SCENARIOS[name]
        table = results[name]
        print('\n## %s — %s (%s, tcp loopback)' % (name, scenario.title, scenario.unit))
        if scenario.workers:
            print('(srv us/c: the broker process; the %d worker process(es) on the '
                  'line below each row)' % scenario.workers)
        print('%-22s %10s %6s %9s %6s %9s %6s %10s %6s' % (
            'row', scenario.unit, 'spread', 'cli us/c', 'spread', 'srv us/c', 'spread',
            'native/row', 'spread'))
        for row in rows:
            if not runs_row(scenario, row, modules):
                continue
            s = table[row]
            if 'median' not in s:
                print('%-22s %10s   %s' % (row, 'n/a', s['na'][:90]))
                continue
            ratio = s.get('ratio')
            ratio_text = ('%9.2fx %s' % (ratio['median'], _pct(ratio['spread']))
                          if ratio else '')
            print('%-22s %10.1f %s %9.1f %s %9.1f %s %s' % (
                row, s['median'], _pct(s['spread']), s['client_us'],
                _pct(s['client_us_spread']), s['server_us'], _pct(s['server_us_spread']),
                ratio_text))
            if 'workers_us' in s:
                print('%-22s workers %.1f us/c (%s), broker %.1f us/c: one broker core '
                      'would route %.0f calls/s' % (
                          '', s['workers_us'], _pct(s['workers_us_spread']).strip(),
                          s['server_us'], 1e6 / s['server_us'] if s['server_us'] else 0))
            if 'vs_base' in s:
                v = s['vs_base']
                print('%-22s vs %s: %.2fx (spread %s), median of %d paired '
                      'repetition(s)' % ('', v['base'], v['median'],
                                         _pct(v['spread']).strip(), len(v['pairs'])))
        print('%-22s %10s   %s' % ('(inproc)', 'n/a', 'client and server are separate '
                                   'processes here; inproc needs one process'))
    if RSS_SCENARIO in results:
        print_rss(results[RSS_SCENARIO], rows)


def rss_growth(rss):
    """{side: KiB} growth from the sample at RSS_FROM calls to the last one."""
    start = next((r for r in rss if r['calls'] >= RSS_FROM), None)
    if start is None or start is rss[-1]:
        return None
    return {side: rss[-1][side + '_kb'] - start[side + '_kb'] for side in ('client', 'server')}


def print_rss(table, rows):
    print('\n## RSS (KiB) of client and server every %dk of %s pipelined calls (last '
          'repetition); growth = RSS at %s calls - RSS at %s, tolerance %d KiB '
          '(allocator settling)' % (RSS_EVERY // 1000, format(RSS_CALLS, ','),
                                    format(RSS_CALLS, ','), format(RSS_FROM, ','),
                                    RSS_TOLERANCE_KB))
    for row in rows:
        s = table[row]
        if 'rss' not in s:
            print('%-22s %-3s %s' % (row, 'n/a', s['na']))
            continue
        growth = rss_growth(s['rss']) or {}
        for side in ('client', 'server'):
            samples = [r[side + '_kb'] for r in s['rss']]
            late = [r[side + '_kb'] for r in s['rss'] if r['calls'] >= RSS_FROM]
            # the band the samples from RSS_FROM on stay in: an allocator
            # that gives pages back and takes them again moves within it,
            # a leak moves it
            print('%-22s %-3s growth %+5s KiB, from %s: %d..%d | %s' % (
                row, {'client': 'cli', 'server': 'srv'}[side], growth.get(side, '?'),
                _short(RSS_FROM), min(late), max(late), ' '.join(map(str, samples))))


def targets(results):
    """The project's targets (issue 12: tcp loopback, 30-byte payload unless
    said), each (text, met or None when unmeasured, detail). A rate target
    is the median of the per-repetition ratios of pseud-native to the row
    (the table's native/row), so both figures of a ratio come from the
    same repetition."""
    def table(scenario):
        return results.get(scenario, {})

    def ratio(scenario, row, factor, text):
        mine, theirs = table(scenario).get(NATIVE, {}), table(scenario).get(row, {})
        if 'median' not in mine or 'median' not in theirs:
            return (text, None, 'not measured')
        paired = theirs.get('ratio')
        value = paired['median'] if paired else mine['median'] / theirs['median']
        spread = ' (spread %.0f%%)' % (100 * paired['spread']) \
            if paired and paired['spread'] is not None else ''
        return (text, value >= factor, '%.2fx%s' % (value, spread))

    def cpu(side, factor):
        text = '%s CPU per pipelined call <= %.1f x raw-c' % (side, factor)
        mine, theirs = table('pipelined').get(NATIVE, {}), table('pipelined').get('raw-c', {})
        key = side + '_us'
        if key not in mine or key not in theirs:
            return (text, None, 'not measured')
        a, b = mine[key], theirs[key]
        return (text, a <= factor * b, '%.1f vs %.1f us = %.2fx' % (a, b, a / b))

    out = [ratio('pipelined', 'raw-c', 0.8, 'pipelined >= 0.8 x raw-c'),
           cpu('server', 1.4), cpu('client', 1.6),
           ratio('sequential', 'raw-c', 0.95, 'sequential >= 0.95 x raw-c'),
           ratio('send_to', 'raw-c', 0.95, 'send_to >= 0.95 x raw-c'),
           ratio('processes-50', 'raw-c', 0.8, 'processes-50 >= 0.8 x raw-c'),
           ratio('bulk-1MB', 'raw-c', 0.9, 'bulk 1 MB >= 0.9 x raw-c MB/s')]

    def versus(name, factor, text):
        """pseud-native in scenario ``name`` vs in its base scenario: the
        median of the ratios of the same repetitions; beside it, where
        measured, the same ratio through raw_peer's broker (the floor):
        pseud-native's peers (what pseud's broker could at best reach)
        and raw-c's."""
        pair = results.get(name, {}).get(NATIVE, {}).get('vs_base')
        if pair is None:
            return (text, None, 'not measured')
        floors = ['%s %.2fx' % (label, results[name][row]['vs_base']['median'])
                  for row, label in ((MIXED, 'pseud peers'), ('raw-c', 'raw-c peers'))
                  if 'vs_base' in results[name].get(row, {})]
        return (text, pair['median'] >= factor, '%.2fx (paired, spread %s)%s' % (
            pair['median'], _pct(pair['spread']).strip(),
            '; via raw_peer\'s broker: ' + ', '.join(floors) if floors else ''))

    out.append(versus('broker-sequential', 0.6, 'broker sequential >= 0.6 x direct'))
    out.append(versus('broker-pipelined', 0.5, 'broker pipelined >= 0.5 x direct'))
    out.append(versus('cpu-64-broker-2', 1.6, 'cpu-64: 2 workers >= 1.6 x 1 worker'))
    text = 'greenlets-100 >= 0.8 x pipelined (pseud-native)'
    many, piped = table('greenlets-100').get(NATIVE, {}), table('pipelined').get(NATIVE, {})
    if 'median' in many and 'median' in piped:
        value = many['median'] / piped['median']
        out.append((text, value >= 0.8, '%.2fx (%.0f vs %.0f calls/s)'
                    % (value, many['median'], piped['median'])))
    else:
        out.append((text, None, 'not measured'))
    for row in PYTHON_PEERS:                # the goal of the first round, still kept
        out.append(ratio('pipelined', row, 3.0, 'pipelined >= 3 x %s' % row))
    rss = table(RSS_SCENARIO).get(NATIVE, {}).get('rss')
    growth = rss_growth(rss) if rss else None
    for side in ('client', 'server'):
        text = '%s RSS growth %s -> %s calls <= %d KiB' % (
            side, _short(RSS_FROM), _short(RSS_CALLS), RSS_TOLERANCE_KB)
        if growth is None:
            out.append((text, None, 'not measured'))
        else:
            out.append((text, growth[side] <= RSS_TOLERANCE_KB, '%+d KiB' % growth[side]))
    return out


def _short(calls):
    return '%dM' % (calls // 1_000_000) if calls % 1_000_000 == 0 else '%dk' % (calls // 1000)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--native-python', required=True)
    parser.add_argument('--native-path', required=True)
    parser.add_argument('--peers-python', required=True)
    parser.add_argument('--raw-c', required=True)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--seconds', type=float, default=1.0)
    parser.add_argument('--quick', action='store_true',
                        help='one repetition of 0.5 s, no %s-call RSS run' % _short(RSS_CALLS))
    parser.add_argument('--only', default=None,
                        help='comma-separated scenarios, or groups of them: %s' % '; '.join(
                            '%s = %s' % (g, ','.join(n)) for g, n in GROUPS.items()))
    parser.add_argument('--rows', default=None,
                        help='comma-separated rows (default: all; "hang" is a test-only '
                             'row that hangs on purpose)')
    parser.add_argument('--compare-path', default=None,
                        help='import path of another build of pseud-native, measured as '
                             'a row of its own (run.sh --compare REV makes it)')
    parser.add_argument('--compare-label', default='pseud-native@other')
    parser.add_argument('--wait-quiet', nargs='?', type=float, const=300.0, default=None,
                        metavar='SECONDS', help='wait (at most SECONDS, default 300) for '
                        'the machine to be quiet before starting')
    parser.add_argument('--line-timeout', type=float, default=LINE_TIMEOUT,
                        help='seconds to wait for any line of a peer process')
    parser.add_argument('--callgrind', action='store_true',
                        help='instructions per call under valgrind instead of rates')
    parser.add_argument('--callgrind-calls', type=int, default=1000,
                        help='N: runs of N and 3N calls, the difference is measured')
    parser.add_argument('--syscalls', action='store_true',
                        help='system calls (strace) and page faults (perf stat) per call '
                             'instead of rates (N and 3N calls as --callgrind)')
    parser.add_argument('--profiles', default=None,
                        help='with --callgrind: keep callgrind_annotate summaries here')
    parser.add_argument('--plot', default=None, metavar='FILE.png',
                        help='draw the ratios to raw-c as a bar chart (needs matplotlib '
                             'in the peers python)')
    parser.add_argument('--json', default=None)
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.seconds = 1, 0.5
    args.burn_rounds = None       # calibrated when a scenario calls burn
    return args


def pick_scenarios(args):
    """The scenarios of --only (groups expanded, in the suite's order), or
    all of them; --quick leaves out the 3M-call RSS run."""
    if not args.only:
        return [n for n in SCENARIOS if not (args.quick and n == RSS_SCENARIO)]
    wanted = set()
    for name in args.only.split(','):
        if name not in SCENARIOS and name not in GROUPS:
            raise SystemExit('--only: unknown %r (scenarios: %s; groups: %s)' % (
                name, ', '.join(SCENARIOS), ', '.join(GROUPS)))
        wanted.update(GROUPS.get(name, (name,)))
    return [n for n in SCENARIOS if n in wanted]


def pick_rows(args):
    rows = list(ROWS)
    if args.compare_path:
        rows.insert(rows.index(NATIVE) + 1, args.compare_label)
    if args.rows:
        wanted = args.rows.split(',')
        rows = [r if r != 'compare' else args.compare_label for r in wanted]
        known = set(ROWS) | {'hang'} | ({args.compare_label} if args.compare_path else set())
        unknown = [r for r in rows if r not in known]
        if unknown:
            raise SystemExit('--rows: unknown %s (known: %s; "compare" needs --compare)'
                             % (', '.join(unknown), ', '.join(sorted(known))))
    return rows


def run_rates(args, launcher, rows, names, began):
    """Every scenario and row, repetitions interleaved; the row order is
    reversed on every other repetition, so that no row is always measured
    right after the same neighbour (A, B, then B, A, ...)."""
    broken = {row: launcher.broken(row) for row in rows}
    for row, why in broken.items():
        if why:
            print('%s: %s' % (row, why), flush=True)
    runs = {(n, row): [] for n in names for row in rows}
    for rep in range(args.repeat):
        order = rows if rep % 2 == 0 else rows[::-1]
        for name in names:
            scenario = SCENARIOS[name]
            for row in order:
                why = broken[row] or not_run(scenario, row, launcher.module)
                if why:
                    runs[name, row].append({'na': why})
                elif name == RSS_SCENARIO and rep:
                    runs[name, row].append({'skip': True})       # once is enough
                else:
                    result = measure(launcher, row, SCENARIOS[name])
                    if 'error' in result:
                        print('ERROR', result['error'], flush=True)
                    runs[name, row].append(result)
        print('repetition %d done (%.0f s)' % (rep + 1, time.time() - began), flush=True)
    results = {}
    for n in names:
        results[n] = {}
        for row in rows:
            mine = [r for r in runs[n, row] if 'skip' not in r]
            results[n][row] = summary = summarize(mine)
            if row != NATIVE and NATIVE in rows and 'median' in summary:
                native = [r for r in runs[n, NATIVE] if 'skip' not in r]
                ratio = paired_ratios(native, mine)
                if ratio:
                    summary['ratio'] = ratio
            base = SCENARIOS[n].base
            if base in names and 'median' in summary:
                pair = paired_ratios(runs[n, row], runs[base, row])
                if pair:
                    summary['vs_base'] = dict(pair, base=base)
    return results


def main():
    args = parse_args()
    token = reaper.make_token()
    reaper.install(token, lambda count: print('# killed %d leftover benchmark process(es)'
                                              % count, file=sys.stderr, flush=True))
    names = pick_scenarios(args)
    launcher = Launcher(args, token)
    rows = pick_rows(args)
    say = lambda text: print(text, flush=True)      # noqa: E731
    if args.wait_quiet is not None:
        machine.wait_quiet(token, args.wait_quiet, say)
    load, busiest = machine.look(token, 1.0)
    say(machine.describe('before', load, busiest))
    if not args.callgrind and any(SCENARIOS[n].method == 'burn' for n in names):
        args.burn_rounds = burn.calibrate()
        say('burn(%d) takes about %.0f ms here (the cpu scenarios\' handler)'
            % (args.burn_rounds, 1e3 * burn.TARGET_SECONDS))
    before = machine.Sample()
    began = time.time()

    if args.callgrind:
        import callgrind
        results = callgrind.run(args, launcher, rows, say)
    elif args.syscalls:
        import syscounts
        results = syscounts.run(args, launcher, rows, say)
    else:
        results = run_rates(args, launcher, rows, names, began)

    after = machine.Sample()
    during = before.busiest(after, token)
    say(machine.describe('after', after.load, during) + ' (CPU over the run)')
    why = machine.busy_reasons(after.load, during) + [
        'before: ' + w for w in machine.busy_reasons(load, busiest)]
    if why:
        say('# WARNING: the machine was busy (rule: 1-min load average > %.1f x cores, or '
            'another process > %.0f%% CPU): %s. %s' % (
                machine.LOAD_PER_CORE, machine.OTHER_PROCESS_PCT, '; '.join(why),
                'Instruction counts do not depend on it.' if args.callgrind or args.syscalls else
                'Trust ratios from this run and CPU per call, not absolute rates.'))
    load_info = {'before': {'loadavg': load, 'busiest': busiest},
                 'after': {'loadavg': after.load, 'busiest_during': during},
                 'busy': why}

    if args.callgrind:
        callgrind.print_table(results, say)
        checks = []
    elif args.syscalls:
        syscounts.print_table(results, say)
        checks = []
    else:
        print('\n# pseud-native benchmark: %d repetition(s) of %.1f s, %.0f s in all'
              % (args.repeat, args.seconds, time.time() - began))
        print('# rates are medians; spread = (max-min)/median over the repetitions; us/c = '
              'CPU microseconds per call of each process (its own getrusage), client = sum '
              'of its processes; native/row = median of the per-repetition ratios of '
              'pseud-native to the row (measured one after the other)')
        print_tables(results, names, rows, launcher.module)
        print('\n## targets (issue 12, and the broker\'s of issue 11; tcp loopback, '
              '30-byte payload; a ratio is the native/row column: the median of '
              'per-repetition ratios)')
        checks = targets(results)
        for text, met, detail in checks:
            print('%-50s %-8s %s' % (text, {True: 'met', False: 'NOT MET', None: 'n/a'}[met],
                                      detail))
    out = args.json
    if args.plot and not out:
        out = os.path.join(tempfile.mkdtemp(), 'suite.json')
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, 'w') as fh:
            json.dump({'seconds': args.seconds, 'repeat': args.repeat, 'rows': rows,
                       'burn_rounds': args.burn_rounds,
                       'mode': ('callgrind' if args.callgrind else
                                'syscalls' if args.syscalls else 'rates'),
                       'load': load_info, 'results': results,
                       'targets': [{'target': t, 'met': m, 'detail': d}
                                   for t, m, d in checks]}, fh, indent=2)
        if args.json:
            print('\nJSON: %s' % args.json)
    if args.plot and not (args.callgrind or args.syscalls):
        done = subprocess.run([args.peers_python, os.path.join(HERE, 'plot.py'), out,
                               args.plot], capture_output=True, text=True, timeout=300)
        print(('plot: %s' % args.plot) if done.returncode == 0 else
              'plot failed: %s' % (done.stderr.strip().splitlines() or ['?'])[-1])


if __name__ == '__main__':
    main()
