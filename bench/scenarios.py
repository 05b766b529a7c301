"""The scenarios: what a caller does, shared by the driver and the peers.

Besides what the caller does (loop, payload, batch, reverse), a scenario
says what answers it:

* ``method``: the handler called, ``echo`` (returns its argument) or
  ``burn`` (about 1 ms of pure-Python arithmetic, see burn.py, then
  returns its argument);
* ``workers``: ``None`` for one server that binds, or N: a broker
  (docs/guide/scaling.rst) and N worker processes behind it, the caller
  connected to the broker's frontend;
* ``greenlets``: how many client greenlets the ``concurrent`` loop runs;
* ``rows``: the row modules that run it (``None``: every row);
* ``base``: the scenario it is compared with, row by row, in the same
  repetitions (``broker-sequential`` with ``sequential``: the broker's
  cost).
"""
from collections import namedtuple

SMALL = b'x' * 30
MEGABYTE = b'x' * (1 << 20)
GREENLETS = 100
PROCESSES = 50
RSS_SCENARIO = 'rss-3M'
RSS_EVERY = 250_000                # RSS sampled every RSS_EVERY calls...
RSS_CALLS = 3_000_000              # ...up to this many
RSS_FROM = 1_000_000               # growth counted from here (allocators settle before)
RSS_TOLERANCE_KB = 64              # growth up to this is allocator settling, not a leak
RSS_CHECKPOINTS = tuple(range(RSS_EVERY, RSS_CALLS + 1, RSS_EVERY))
CPU_IN_FLIGHT = 64
RSS_ROWS = ('raw-c', 'pseud-native')    # the rows that make 3M calls in reasonable time
BROKER_ROWS = ('pseud-native',)          # the broker is pseud-native's own...
MIXED = 'pseud-native+raw-broker'        # pseud-native's peers through raw_peer's broker
BROKER_FLOOR_ROWS = ('raw-c', 'pseud-native', MIXED)   # ...with raw_peer's as its floor (echo only)

Scenario = namedtuple('Scenario', 'name loop payload batch reverse unit title '
                      'method workers greenlets rows base',
                      defaults=('echo', None, GREENLETS, None, None))

SCENARIOS = {s.name: s for s in (
    Scenario('sequential', 'sequential', SMALL, 100, False, 'calls/s',
             'echo 30 B, one call in flight'),
    Scenario('broker-sequential', 'sequential', SMALL, 100, False, 'calls/s',
             'echo 30 B, one call in flight, through a broker to one worker',
             workers=1, rows=BROKER_FLOOR_ROWS, base='sequential'),
    Scenario('pipelined', 'pipelined', SMALL, 100, False, 'calls/s',
             'echo 30 B, 100 calls in flight'),
    Scenario('broker-pipelined', 'pipelined', SMALL, 100, False, 'calls/s',
             'echo 30 B, 100 calls in flight, through a broker to one worker',
             workers=1, rows=BROKER_FLOOR_ROWS, base='pipelined'),
    Scenario('bulk-1MB', 'sequential', MEGABYTE, 1, False, 'MB/s',
             'echo 1 MiB bytes (argument and result), one in flight'),
    Scenario('greenlets-100', 'concurrent', SMALL, 1, False, 'calls/s',
             '%d client greenlets, sequential calls each' % GREENLETS),
    Scenario('processes-50', 'processes', SMALL, 100, False, 'calls/s',
             '%d client processes, sequential calls each' % PROCESSES),
    Scenario('send_to', 'sequential', SMALL, 100, True, 'calls/s',
             'the binding peer calls the connected one, one in flight'),
    Scenario('cpu-64', 'concurrent', SMALL, 1, False, 'calls/s',
             'a ~1 ms pure-Python handler, %d calls in flight, one server'
             % CPU_IN_FLIGHT, method='burn', greenlets=CPU_IN_FLIGHT, rows=BROKER_ROWS),
    Scenario('cpu-64-broker-1', 'concurrent', SMALL, 1, False, 'calls/s',
             'the same through a broker to 1 worker process', method='burn',
             workers=1, greenlets=CPU_IN_FLIGHT, rows=BROKER_ROWS, base='cpu-64'),
    Scenario('cpu-64-broker-2', 'concurrent', SMALL, 1, False, 'calls/s',
             'the same to 2 worker processes', method='burn', workers=2,
             greenlets=CPU_IN_FLIGHT, rows=BROKER_ROWS, base='cpu-64-broker-1'),
    Scenario('cpu-64-broker-4', 'concurrent', SMALL, 1, False, 'calls/s',
             'the same to 4 worker processes', method='burn', workers=4,
             greenlets=CPU_IN_FLIGHT, rows=BROKER_ROWS, base='cpu-64-broker-1'),
    Scenario(RSS_SCENARIO, 'pipelined', SMALL, 100, False, 'calls/s',
             '3,000,000 pipelined calls; RSS every 250k', rows=RSS_ROWS),
)}

# ``--only broker``: the broker's scenarios and the direct ones they are
# compared with
GROUPS = {'broker': tuple(n for n, s in SCENARIOS.items()
                          if s.workers or s.rows == BROKER_ROWS or
                          any(o.base == n for o in SCENARIOS.values()))}
