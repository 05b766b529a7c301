"""How busy the machine is, from /proc: the load average and the other
processes' CPU use, so that a run says what it was measured against.

The rule for "busy" (``busy_reasons``): the 1-minute load average above
half the cores, or another process (not one of the benchmark's own) using
more than 20% of one core over the interval looked at."""
import os
import time

from reaper import MARK

LOAD_PER_CORE = 0.5
OTHER_PROCESS_PCT = 20.0
TICKS = os.sysconf('SC_CLK_TCK')


def cores():
    return os.cpu_count() or 1


def loadavg():
    with open('/proc/loadavg') as fh:
        return tuple(float(x) for x in fh.read().split()[:3])


def _cpu_ticks():
    """{pid: (user+system ticks, command)} of every readable process."""
    out = {}
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % name) as fh:
                raw = fh.read()
        except OSError:
            continue
        head, tail = raw.rsplit(')', 1)
        fields = tail.split()
        out[int(name)] = (int(fields[11]) + int(fields[12]), head.split('(', 1)[1])
    return out


def _ours(pid, token):
    if pid == os.getpid():
        return True
    try:
        with open('/proc/%d/environ' % pid, 'rb') as fh:
            return ('%s=%s' % (MARK, token)).encode() in fh.read().split(b'\0')
    except OSError:
        return False


class Sample:
    """The CPU counters of all processes at one moment."""

    def __init__(self):
        self.when = time.monotonic()
        self.ticks = _cpu_ticks()
        self.load = loadavg()

    def busiest(self, later, token, top=5):
        """[(pct of one core, pid, command)] of the other processes between
        this sample and ``later``, busiest first (ours left out)."""
        seconds = max(later.when - self.when, 1e-3)
        rows = []
        for pid, (ticks, comm) in later.ticks.items():
            before = self.ticks.get(pid, (0, comm))[0]
            pct = 100.0 * (ticks - before) / TICKS / seconds
            if pct >= 1.0 and not _ours(pid, token):
                rows.append((pct, pid, comm))
        rows.sort(reverse=True)
        return rows[:top]


def busy_reasons(load, busiest):
    """Why the machine counts as busy (empty: quiet), by the module's rule."""
    why = []
    if load[0] > LOAD_PER_CORE * cores():
        why.append('load average %.2f > %.1f x %d cores' % (load[0], LOAD_PER_CORE, cores()))
    for pct, pid, comm in busiest:
        if pct > OTHER_PROCESS_PCT:
            why.append('%s (pid %d) used %.0f%% CPU' % (comm, pid, pct))
    return why


def describe(label, load, busiest):
    text = '# %s: load average %.2f %.2f %.2f (%d cores)' % ((label,) + load + (cores(),))
    if busiest:
        text += '; busiest other processes: ' + ', '.join(
            '%s[%d] %.0f%%' % (comm, pid, pct) for pct, pid, comm in busiest)
    return text


def look(token, seconds=2.0):
    """Sample the machine for ``seconds``: (load, busiest others)."""
    first = Sample()
    time.sleep(seconds)
    second = Sample()
    return second.load, first.busiest(second, token)


def wait_quiet(token, limit, say):
    """Wait up to ``limit`` seconds for the machine to be quiet by the rule;
    True when it is."""
    deadline = time.monotonic() + limit
    while True:
        load, busiest = look(token)
        why = busy_reasons(load, busiest)
        if not why:
            say('# machine quiet: starting')
            return True
        if time.monotonic() >= deadline:
            say('# still busy after %.0f s (%s): starting anyway' % (limit, '; '.join(why)))
            return False
        say('# waiting for a quiet machine: %s' % '; '.join(why))
        time.sleep(min(10.0, max(0.0, deadline - time.monotonic())))
