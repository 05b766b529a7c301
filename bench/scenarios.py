"""The scenarios: what a caller does, shared by the driver and the peers."""
from collections import namedtuple

Scenario = namedtuple('Scenario', 'name loop payload batch reverse unit title')

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

SCENARIOS = {s.name: s for s in (
    Scenario('sequential', 'sequential', SMALL, 100, False, 'calls/s',
             'echo 30 B, one call in flight'),
    Scenario('pipelined', 'pipelined', SMALL, 100, False, 'calls/s',
             'echo 30 B, 100 calls in flight'),
    Scenario('bulk-1MB', 'sequential', MEGABYTE, 1, False, 'MB/s',
             'echo 1 MiB bytes (argument and result), one in flight'),
    Scenario('greenlets-100', 'concurrent', SMALL, 1, False, 'calls/s',
             '%d client greenlets, sequential calls each' % GREENLETS),
    Scenario('processes-50', 'processes', SMALL, 100, False, 'calls/s',
             '%d client processes, sequential calls each' % PROCESSES),
    Scenario('send_to', 'sequential', SMALL, 100, True, 'calls/s',
             'the binding peer calls the connected one, one in flight'),
    Scenario(RSS_SCENARIO, 'pipelined', SMALL, 100, False, 'calls/s',
             '3,000,000 pipelined calls; RSS every 250k'),
)}
