"""System calls and page faults per call, client and server (in the
broker's scenarios client, broker and worker): counts that, like
callgrind's instructions, hardly depend on how busy the machine is.

For each scenario and row the processes (started by percall.py as a
timed run starts them: a broker's workers too, all workers summed as one
role) run twice under ``strace -f -c`` (every thread: libzmq's I/O
thread included) and twice under ``perf stat -e
minor-faults,major-faults``, making N calls after the warm-up, then 3N;
``(count(3N) - count(N)) / 2N`` is one call's share.
strace slows every system call down, so how many messages one wake-up
finds (and so epoll_wait and ZMQ_FD reads per call) can shift a little
from an untraced run: compare rows measured the same way, not these
counts with a quiet run's rates."""
import re
import shutil

import percall

SCENARIO_NAMES = ('sequential', 'send_to', 'bulk-1MB', 'pipelined')
TOOLS = {
    'strace': lambda out: ['strace', '-f', '-c', '-o', out],
    'perf': lambda out: ['perf', 'stat', '-e', 'minor-faults,major-faults',
                         '-o', out, '--'],
}


def _strace_counts(path):
    """{syscall: calls} of a ``strace -c`` summary."""
    counts = {}
    with open(path) as fh:
        for line in fh:
            fields = line.split()
            if len(fields) >= 5 and re.match(r'^[\d.]+$', fields[0]) and fields[-1] != 'total':
                counts[fields[-1]] = int(fields[3])
    return counts


def _perf_counts(path):
    """{event: count} of a ``perf stat`` file. (Its user and sys seconds
    are not used: they come in scheduler ticks, too coarse for a few
    thousand calls.)"""
    counts = {}
    with open(path) as fh:
        for line in fh:
            match = re.match(r'\s*([\d,.]+)\s+(?:seconds )?([\w-]+)', line)
            if match and match.group(2) in ('minor-faults', 'major-faults'):
                counts[match.group(2)] = float(match.group(1).replace(',', ''))
    return counts


def _one(args, launcher, row, scenario, count, tool, outdir):
    """The scenario's processes, each under `tool`, for `count` calls:
    {role: {name: count}}, the roles client and server, or client, broker
    and worker (all workers together)."""
    files = percall.run_counted(args, launcher, row, scenario, count, TOOLS[tool], outdir)
    return percall.per_role(files, _perf_counts if tool == 'perf' else _strace_counts)


def _per_call(small, large, calls):
    return {role: {k: (large[role].get(k, 0) - small[role].get(k, 0)) / calls
                   for k in set(small[role]) | set(large[role])}
            for role in large}


def run(args, launcher, rows, say):
    for tool in ('strace', 'perf'):
        if not shutil.which(tool):
            raise SystemExit('--syscalls needs strace and perf (apt-get install strace '
                             'linux-perf)')

    def measure(row, scenario, outdir):
        calls = args.callgrind_calls
        if scenario.unit == 'MB/s':
            calls = max(calls // 10, 10)
        say('# syscalls: %s %s (%d and %d calls)' % (row, scenario.name, calls, 3 * calls))
        entry = {}
        for tool in ('strace', 'perf'):
            one = _one(args, launcher, row, scenario, calls, tool, outdir)
            three = _one(args, launcher, row, scenario, 3 * calls, tool, outdir)
            entry[tool] = _per_call(one, three, 2 * calls)
        return entry

    return percall.run_all(args, launcher, rows, SCENARIO_NAMES, measure)


def print_table(results, say, detail=8):
    say('\n## system calls and page faults per call ((count(3N) - count(N)) / 2N, '
        'all threads; strace -f -c, perf stat)')
    width = max([12] + [len(name) for name in results])
    for name, table in results.items():
        for row, r in table.items():
            if 'na' in r:
                say('%-*s %-24s n/a   %s' % (width, name, row, r['na'][:70]))
                continue
            for role in percall.ROLES:
                if role not in r['strace']:
                    continue
                sc = r['strace'][role]
                top = sorted(((v, k) for k, v in sc.items() if v >= 0.05), reverse=True)
                pf = r['perf'][role]
                say('%-*s %-12s %-6s syscalls %6.2f  minor faults %6.2f | %s' % (
                    width, name, row, role, sum(sc.values()), pf.get('minor-faults', 0.0),
                    ', '.join('%s %.2f' % (k, v) for v, k in top[:detail])))
