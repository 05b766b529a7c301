"""A row that hangs on purpose, for tests/test_bench_orphans.py only (the
suite never runs it unless asked with ``--rows hang``).

Its responder forks a child that ignores SIGTERM; its caller forks a child
that leaves the process group (``setsid``) and an orphan (double fork),
then never answers. Every one of them must be gone when the suite ends."""
import os
import signal
import time

NAME = 'hang'
KIND = 'gevent'
NOT_SUPPORTED = {}
SHARED_CALLER = True


def _note(pid):
    """The test reads the pids of what it must find gone from this file."""
    path = os.environ.get('BENCH_HANG_PIDFILE')
    if path:
        with open(path, 'a') as fh:
            fh.write('%d\n' % pid)


def _linger(leave_group=False, ignore_term=False):
    """Fork a child that sleeps far longer than any test."""
    pid = os.fork()
    if pid:
        _note(pid)
    else:
        if leave_group:
            os.setsid()
        if ignore_term:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(3600)
        os._exit(0)


def _orphan():
    """A grandchild whose parent exits at once: re-parented."""
    if os.fork() == 0:
        _linger(leave_group=True)
        os._exit(0)


def serve(endpoint, bind):
    _note(os.getpid())
    _linger(ignore_term=True)
    return 'tcp://127.0.0.1:9' if '*' in endpoint else endpoint


def connect(endpoint):
    _note(os.getpid())
    _linger(leave_group=True)
    _orphan()
    time.sleep(3600)                   # never ready


def reverse_caller(endpoint):
    return connect(endpoint)
