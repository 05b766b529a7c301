"""The N / 3N method that callgrind.py and syscounts.py share: which rows
and scenarios they measure, and one run of a scenario's processes for a
given number of calls, each process under a measuring tool that writes a
file of its own.

The processes are started as suite.start_pair starts them for a timed
run, so in the broker's scenarios the broker and each of its workers run
under the tool too. Everything that does not depend on the number of
calls (start-up, imports, connecting, the warm-up, exit) is the same in a
run of N calls and a run of 3N, so ``(count(3N) - count(N)) / 2N`` is one
call's share of a count, for each role: client and server, or client,
broker and worker (all workers summed)."""
import os
import re
import shutil
import tempfile

from scenarios import SCENARIOS
from suite import NATIVE, end_peers, not_run, pick_scenarios, start_pair

ROLES = ('client', 'server', 'broker', 'worker')     # the order of a table
DONE_TIMEOUT = 600          # beyond --line-timeout: 3N calls under a slow tool


def measured_rows(launcher, rows):
    """raw-c and every row that runs pseud-native's module (pseud-native,
    the mixed row, --compare's build), in the order of ``rows``."""
    return [r for r in rows if r == 'raw-c' or launcher.module.get(r) == NATIVE]


def run_all(args, launcher, rows, default_names, measure, unsupported=None):
    """{scenario: {row: figures}} for the scenarios of --only (groups
    expanded) or ``default_names``, and the measured rows.

    ``measure(row, scenario, outdir)`` returns one row's figures; a
    scenario for which ``unsupported(scenario)`` gives a reason, a row the
    scenario does not run (suite.not_run) and a measurement that raised
    are n/a, with the reason. ``outdir`` is a scratch directory, removed
    at the end."""
    names = pick_scenarios(args) if args.only else list(default_names)
    wanted = measured_rows(launcher, rows)
    results = {}
    outdir = tempfile.mkdtemp(prefix='bench-percall-')
    try:
        for name in names:
            scenario = SCENARIOS[name]
            table = results[name] = {}
            why = unsupported(scenario) if unsupported else None
            if why:
                table['-'] = {'na': why}
                continue
            for row in wanted:
                why = not_run(scenario, row, launcher.module)
                if why:
                    table[row] = {'na': why}
                    continue
                try:
                    table[row] = measure(row, scenario, outdir)
                except Exception as exc:        # one row's failure is its row's n/a
                    table[row] = {'na': str(exc)[:200]}
    finally:
        shutil.rmtree(outdir, ignore_errors=True)
    return results


def run_counted(args, launcher, row, scenario, count, tool, outdir, env=None):
    """The scenario's processes, as start_pair starts them, for ``count``
    calls after the warm-up, each one's command line prefixed with
    ``tool(path)``: a tool that writes what it measured to ``path`` (or
    to names that begin with ``path.``). ``env``: more environment for
    every process. Returns [(role, path)], one per process started, once
    all of them have ended by themselves (end of stdin), so the tool has
    written its files."""
    tag = '%s.%s.%d.' % (re.sub(r'[^\w.-]', '_', row), scenario.name, count)
    rundir = tempfile.mkdtemp(prefix=tag, dir=outdir)
    files = []

    def wrap(role):
        path = os.path.join(rundir, '%s.%d' % (role, len(files)))
        files.append((role, path))
        return tool(path)

    peers = []
    launcher.wrap_role, launcher.extra_env = wrap, dict(env or {})
    try:
        responder, workers, caller, peers, na = start_pair(launcher, row, scenario, count)
        if na:
            raise RuntimeError(na)
        ready = caller.read()
        if ready.get('event') == 'n/a':
            raise RuntimeError(ready['reason'])
        caller.send('go')
        done = caller.read(timeout=args.line_timeout + DONE_TIMEOUT)
        if done.get('calls') != count:
            raise RuntimeError('%s made %s calls, not %d' % (row, done.get('calls'), count))
        for peer in [caller, responder] + workers:
            peer.finish()
    finally:
        launcher.wrap_role, launcher.extra_env = None, {}
        end_peers(launcher, peers)
    return files


def per_role(files, value):
    """{role: the sum of ``value(path)`` over the role's processes}; a
    value is a number or a {name: number} dict (summed key by key)."""
    out = {}
    for role, path in files:
        got = value(path)
        if isinstance(got, dict):
            mine = out.setdefault(role, {})
            for key, number in got.items():
                mine[key] = mine.get(key, 0) + number
        else:
            out[role] = out.get(role, 0) + got
    return out

