"""A process's own CPU time and resident memory, read from itself."""
import os
import resource

_PAGE_KB = os.sysconf('SC_PAGE_SIZE') // 1024


def cpu_seconds():
    """User + system CPU seconds this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_kb():
    """Current resident set size in KiB (not the peak)."""
    with open('/proc/self/statm') as fh:
        return int(fh.read().split()[1]) * _PAGE_KB


def snapshot():
    return {'cpu': cpu_seconds(), 'rss_kb': rss_kb()}
