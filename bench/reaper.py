"""No process of the benchmark outlives it.

Three layers, because a hung row can misbehave in every way:

* every peer process starts in its own process group (a new session), and
  everything it forks (the 50 clients of processes-50) stays in that group
  unless it leaves on purpose: ``kill_group`` ends the whole group,
  SIGTERM first, SIGKILL after a grace;
* the driver is a child subreaper (``prctl(PR_SET_CHILD_SUBREAPER)``), so
  a process whose parent died is re-parented to the driver, not to init,
  and the driver can reap it;
* every process started carries a marker in its environment
  (``BENCH_RUN=<token>``, inherited by all its descendants, kept across
  ``setsid``), and ``sweep`` kills every process whose environment holds it,
  wherever it went.

``install`` arms the sweep at exit, on SIGINT/SIGTERM/SIGHUP, so an
interrupted or failing suite leaves nothing behind either."""
import atexit
import ctypes
import os
import signal
import time
import uuid

PR_SET_CHILD_SUBREAPER = 36
MARK = 'BENCH_RUN'
GRACE = 1.0


def make_token():
    return '%d-%s' % (os.getpid(), uuid.uuid4().hex[:12])


def become_subreaper():
    """True when the kernel accepted; orphans then come to this process."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _environ_has(pid, needle):
    try:
        with open('/proc/%d/environ' % pid, 'rb') as fh:
            return needle in fh.read().split(b'\0')
    except OSError:            # gone, or not ours to read
        return False


def marked(token):
    """The pids of the live processes carrying ``BENCH_RUN=token``."""
    needle = ('%s=%s' % (MARK, token)).encode()
    me = os.getpid()
    found = []
    for name in os.listdir('/proc'):
        if name.isdigit() and int(name) != me and _environ_has(int(name), needle):
            if not _is_zombie(int(name)):
                found.append(int(name))
    return found


def _is_zombie(pid):
    try:
        with open('/proc/%d/stat' % pid) as fh:
            return fh.read().rsplit(')', 1)[1].split()[0] == 'Z'
    except (OSError, IndexError):
        return True


def _reap(pids):
    """Collect the exit status of those that are (now) our children."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def _signal_all(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _wait_gone(pids, seconds):
    deadline = time.monotonic() + seconds
    left = list(pids)
    while left and time.monotonic() < deadline:
        _reap(left)
        left = [p for p in left if os.path.exists('/proc/%d' % p) and not _is_zombie(p)]
        if left:
            time.sleep(0.05)
    return left


def kill_group(pgid, grace=GRACE):
    """End a process group: SIGTERM, then SIGKILL to what is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + (grace if sig == signal.SIGTERM else 5)
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            # zombies keep a group alive until reaped: reap ours
            _reap_any_nohang()
            time.sleep(0.02)


def _reap_any_nohang():
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def sweep(token, grace=GRACE):
    """Kill every process carrying the marker; returns how many there were."""
    pids = marked(token)
    if not pids:
        return 0
    _signal_all(pids, signal.SIGTERM)
    left = _wait_gone(pids, grace)
    if left:
        _signal_all(left, signal.SIGKILL)
        _wait_gone(left, 5)
    return len(pids)


def install(token, on_exit=None):
    """Sweep at interpreter exit and on SIGINT/SIGTERM/SIGHUP (then exit
    with 128 + signal, as a shell would report it)."""
    become_subreaper()

    def at_exit():
        count = sweep(token)
        if count and on_exit:
            on_exit(count)

    atexit.register(at_exit)

    def on_signal(signum, _frame):
        signal.signal(signum, signal.SIG_IGN)
        at_exit()
        os._exit(128 + signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
