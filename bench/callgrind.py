"""Instructions per call under valgrind's callgrind: a figure that does not
depend on how busy the machine is, so runs on different days compare.

For each row and scenario (sequential, pipelined; bulk-1MB and the
broker's two echo scenarios with --only) every process of the scenario
runs under callgrind, as percall.py starts them: the responder and the
caller, or in the broker's scenarios the caller, the broker and its
workers. Each runs twice: once making N calls after the warm-up, once 3N.
Everything that does not depend on the number of calls (interpreter
start, imports, connecting, the warm-up, exit) is the same in both runs,
so ``(I(3N) - I(N)) / 2N`` is the cost of one call, for each role (all
threads of each process, so libzmq's I/O thread included; the workers
summed)."""
import glob
import os
import re
import shutil
import subprocess

import percall
from scenarios import SCENARIOS

SCENARIO_NAMES = ('sequential', 'pipelined')
SUMMARY_LINES = 80       # the functions that make up 95% of the instructions, at most


def _total(path):
    """The instruction count of a callgrind output file."""
    with open(path) as fh:
        for line in fh:
            match = re.match(r'(?:summary|totals): (\d+)', line)
            if match:
                return int(match.group(1))
    raise RuntimeError('no totals in %s' % path)


def _valgrind(path):
    # %p: a process that forked would write a file of its own, not share one
    return ['valgrind', '--tool=callgrind', '--quiet',
            '--callgrind-out-file=%s.%%p' % path]


def _one(args, launcher, row, scenario, count, outdir):
    """The scenario's processes under callgrind for ``count`` calls:
    [(role, callgrind file)], one per process."""
    files = []
    for role, path in percall.run_counted(args, launcher, row, scenario, count, _valgrind,
                                          outdir, env={'PYTHONHASHSEED': '0'}):
        found = glob.glob(path + '.*')
        if len(found) != 1:
            raise RuntimeError('%s %s: %d callgrind files for a %s process'
                               % (row, scenario.name, len(found), role))
        files.append((role, found[0]))
    return files


def _names(files):
    """[(name, path)]: a process's role, numbered when the role has several
    processes (worker1, worker2, ...)."""
    roles = [role for role, _ in files]
    seen = {}
    out = []
    for role, path in files:
        seen[role] = seen.get(role, 0) + 1
        out.append((role if roles.count(role) == 1 else '%s%d' % (role, seen[role]), path))
    return out


def _annotate(files, dest, label):
    os.makedirs(dest, exist_ok=True)
    for name, path in _names(files):
        text = subprocess.run(['callgrind_annotate', '--auto=no', '--threshold=95',
                               path], capture_output=True, text=True, timeout=120).stdout
        with open(os.path.join(dest, '%s.%s.txt' % (label, name)), 'w') as fh:
            fh.write('\n'.join(text.splitlines()[:SUMMARY_LINES]) + '\n')


_FUNCTION_LINE = re.compile(r'^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*)$')


def _per_function(path):
    """Exclusive instructions by function of a callgrind file, names cut to
    'file.c:function [library]'."""
    text = subprocess.run(['callgrind_annotate', '--auto=no', '--threshold=100',
                           '--inclusive=no', path],
                          capture_output=True, text=True, timeout=300).stdout
    counts = {}
    for line in text.split('file:function', 1)[-1].splitlines():
        match = _FUNCTION_LINE.match(line)
        if not match:
            continue
        where, _, lib = match.group(2).partition(' [')
        name = re.sub(r'^\S*/', '', where)
        if lib:
            name += ' [' + lib.rstrip(']').rsplit('/', 1)[-1] + ']'
        counts[name] = counts.get(name, 0) + int(match.group(1).replace(',', ''))
    return counts


def _per_call_profile(small_files, large_files, calls, dest, label):
    """What one call costs in each function: the two runs' per-function
    counts subtracted and divided by the calls between them (start-up and
    exit cancel out, as in the totals), with the total per library; the
    workers summed."""
    os.makedirs(dest, exist_ok=True)
    smalls = percall.per_role(small_files, _per_function)
    larges = percall.per_role(large_files, _per_function)
    for role, large in larges.items():
        small = smalls.get(role, {})
        per_call = {k: (large.get(k, 0) - small.get(k, 0)) / calls
                    for k in set(small) | set(large)}
        total = sum(per_call.values())
        libs = {}
        for name, value in per_call.items():
            lib = name.rsplit(' [', 1)[1].rstrip(']') if ' [' in name else '(inlined)'
            libs[lib] = libs.get(lib, 0) + value
        lines = ['%s, %s: %.0f instructions per call (all threads)' % (label, role, total),
                 '', 'by library:']
        lines += ['%10.0f  %s' % (v, k) for k, v in sorted(libs.items(), key=lambda kv: -kv[1])
                  if abs(v) >= 50]
        lines += ['', 'by function (exclusive), top %d:' % SUMMARY_LINES]
        lines += ['%10.0f  %s' % (v, k) for k, v in
                  sorted(per_call.items(), key=lambda kv: -kv[1])[:SUMMARY_LINES]]
        with open(os.path.join(dest, '%s.%s.per-call.txt' % (label, role)), 'w') as fh:
            fh.write('\n'.join(lines) + '\n')


def _unsupported(scenario):
    if scenario.reverse or scenario.loop not in ('sequential', 'pipelined'):
        return 'not in the callgrind mode'
    return None


def run(args, launcher, rows, say):
    if not shutil.which('valgrind'):
        raise SystemExit('--callgrind needs valgrind (bench/run.sh installs it)')
    small, large = args.callgrind_calls, 3 * args.callgrind_calls

    def measure(row, scenario, outdir):
        say('# callgrind: %s %s (%d and %d calls)' % (row, scenario.name, small, large))
        small_files = _one(args, launcher, row, scenario, small, outdir)
        files = _one(args, launcher, row, scenario, large, outdir)
        one, three = percall.per_role(small_files, _total), percall.per_role(files, _total)
        entry = {'ir': {role: (three[role] - one[role]) / (large - small) for role in three},
                 'totals': {role: [one[role], three[role]] for role in three},
                 'processes': percall.per_role(files, lambda path: 1),
                 'calls': [small, large]}
        if args.profiles:
            label = '%s.%s' % (re.sub(r'[^\w.-]', '_', row), scenario.name)
            _annotate(files, args.profiles, label)
            _per_call_profile(small_files, files, large - small, args.profiles, label)
        return entry

    return percall.run_all(args, launcher, rows, SCENARIO_NAMES, measure, _unsupported)


def print_table(results, say):
    """The direct scenarios (client and server), then the broker's (client,
    broker and worker: all workers together)."""
    say('\n## instructions per call (callgrind; (I(3N) - I(N)) / 2N, all threads)')
    for roles, through_broker in ((('client', 'server'), False),
                                  (('client', 'broker', 'worker'), True)):
        names = [n for n in results if bool(SCENARIOS[n].workers) == through_broker]
        if not names:
            continue
        width = max([12] + [len(n) for n in names])
        if through_broker:
            say('')
        say('%-*s %-24s %s %14s' % (width, 'scenario', 'row', ' '.join(
            '%14s' % ('%s Ir/c' % role) for role in roles), 'total Ir/c'))
        for name in names:
            for row, r in results[name].items():
                if 'na' in r:
                    say('%-*s %-24s %14s   %s' % (width, name, row, 'n/a', r['na'][:70]))
                    continue
                ir = [r['ir'].get(role, 0.0) for role in roles]
                say('%-*s %-24s %s %14.0f' % (width, name, row, ' '.join(
                    '%14.0f' % value for value in ir), sum(r['ir'].values())))
