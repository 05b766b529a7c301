"""Instructions per call under valgrind's callgrind: a figure that does not
depend on how busy the machine is, so runs on different days compare.

For each row and scenario (sequential, pipelined) the responder and the
caller both run under callgrind, twice: once making N calls after the
warm-up, once 3N. Everything that does not depend on the number of calls
(interpreter start, imports, connecting, the warm-up, exit) is the same in
both runs, so ``(I(3N) - I(N)) / 2N`` is the cost of one call, on each side
(all threads of the process, so libzmq's I/O thread included)."""
import glob
import os
import re
import shutil
import subprocess
import tempfile

from scenarios import SCENARIOS
from suite import NATIVE, end_peers

SCENARIO_NAMES = ('sequential', 'pipelined')
CALLGRIND_ROWS = ('raw-c', NATIVE)
SUMMARY_LINES = 80       # the functions that make up 95% of the instructions, at most


def _total(path):
    """The instruction count of a callgrind output file."""
    with open(path) as fh:
        for line in fh:
            match = re.match(r'(?:summary|totals): (\d+)', line)
            if match:
                return int(match.group(1))
    raise RuntimeError('no totals in %s' % path)


def _one(args, launcher, row, scenario, count, outdir):
    """Run a pair under callgrind for ``count`` calls: (client Ir, server Ir)."""
    tag = '%s.%s.%d' % (re.sub(r'[^\w.-]', '_', row), scenario.name, count)
    launcher.wrap = ['valgrind', '--tool=callgrind', '--quiet',
                     '--callgrind-out-file=%s/%s.%%q{BENCH_ROLE}.%%p' % (outdir, tag)]
    peers = []
    try:
        launcher.extra_env = {'BENCH_ROLE': 'server', 'PYTHONHASHSEED': '0'}
        # start_pair starts the responder first (not reversed scenarios)
        responder = launcher.serve(row, 'bind', 'tcp://127.0.0.1:*')
        peers.append(responder)
        endpoint = responder.read()['endpoint']
        launcher.extra_env = {'BENCH_ROLE': 'client', 'PYTHONHASHSEED': '0'}
        caller = launcher.call(row, scenario.name, 'connect', endpoint, count)
        peers.append(caller)
        caller.read()                                  # ready
        caller.send('go')
        done = caller.read(timeout=args.line_timeout + 600)
        if done.get('calls') != count:
            raise RuntimeError('%s made %s calls, not %d' % (row, done.get('calls'), count))
        caller.finish()
        responder.finish()        # end of stdin: it exits, callgrind writes its file
    finally:
        launcher.wrap, launcher.extra_env = [], {}
        end_peers(launcher, peers)
    files = {role: glob.glob('%s/%s.%s.*' % (outdir, tag, role)) for role in ('client', 'server')}
    for role, found in files.items():
        if len(found) != 1:
            raise RuntimeError('%s: %d callgrind files for the %s' % (tag, len(found), role))
    return _total(files['client'][0]), _total(files['server'][0]), files


def _annotate(files, dest, label):
    os.makedirs(dest, exist_ok=True)
    for role, found in files.items():
        text = subprocess.run(['callgrind_annotate', '--auto=no', '--threshold=95',
                               found[0]], capture_output=True, text=True, timeout=120).stdout
        with open(os.path.join(dest, '%s.%s.txt' % (label, role)), 'w') as fh:
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
    exit cancel out, as in the totals), with the total per library."""
    os.makedirs(dest, exist_ok=True)
    for role in ('client', 'server'):
        small = _per_function(small_files[role][0])
        large = _per_function(large_files[role][0])
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


def run(args, launcher, rows, say):
    if not shutil.which('valgrind'):
        raise SystemExit('--callgrind needs valgrind (bench/run.sh installs it)')
    wanted = [r for r in rows if r in CALLGRIND_ROWS or launcher.module.get(r) == NATIVE]
    small, large = args.callgrind_calls, 3 * args.callgrind_calls
    results = {}
    outdir = tempfile.mkdtemp(prefix='bench-callgrind-')
    try:
        for name in (args.only.split(',') if args.only else SCENARIO_NAMES):
            scenario = SCENARIOS[name]
            if scenario.reverse or scenario.loop not in ('sequential', 'pipelined'):
                results.setdefault(name, {})['-'] = {'na': 'not in the callgrind mode'}
                continue
            for row in wanted:
                say('# callgrind: %s %s (%d and %d calls)' % (row, name, small, large))
                try:
                    c1, s1, small_files = _one(args, launcher, row, scenario, small, outdir)
                    c2, s2, files = _one(args, launcher, row, scenario, large, outdir)
                except Exception as exc:        # one row's failure is its row's n/a
                    results.setdefault(name, {})[row] = {'na': str(exc)[:200]}
                    continue
                results.setdefault(name, {})[row] = {
                    'client_ir': (c2 - c1) / (large - small),
                    'server_ir': (s2 - s1) / (large - small),
                    'calls': [small, large], 'client_totals': [c1, c2],
                    'server_totals': [s1, s2]}
                if args.profiles:
                    label = '%s.%s' % (re.sub(r'[^\w.-]', '_', row), name)
                    _annotate(files, args.profiles, label)
                    _per_call_profile(small_files, files, large - small, args.profiles, label)
    finally:
        shutil.rmtree(outdir, ignore_errors=True)
    return results


def print_table(results, say):
    say('\n## instructions per call (callgrind; (I(3N) - I(N)) / 2N, all threads)')
    say('%-12s %-24s %14s %14s %14s' % ('scenario', 'row', 'client Ir/c', 'server Ir/c',
                                        'total Ir/c'))
    for name, table in results.items():
        for row, r in table.items():
            if 'na' in r:
                say('%-12s %-24s %14s   %s' % (name, row, 'n/a', r['na'][:70]))
                continue
            say('%-12s %-24s %14.0f %14.0f %14.0f' % (
                name, row, r['client_ir'], r['server_ir'], r['client_ir'] + r['server_ir']))
