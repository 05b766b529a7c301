"""The line protocol between the suite driver and a peer process.

Every message a peer sends is one JSON object on a line of its stdout.

Responder (server) process: prints ``{"endpoint": ...}`` once it serves;
then every line it reads on stdin is answered with its own snapshot
(CPU seconds, RSS); end of stdin ends the process.

Caller (client) process: prints ``{"event": "ready", ...}`` after its
warm-up call and waits for a ``go`` line; then runs its plan, pausing at
each checkpoint (``{"event": "checkpoint", ...}``, then ``go`` again) and
ends with ``{"event": "done", "calls": N, "seconds": T, ...}``. Between a
pause and the next ``go`` the caller has no call in flight, so the driver
reads the responder's counters while it is idle.
"""
import json
import os
import sys
import threading
import time

from procstat import snapshot


def emit(**fields):
    sys.stdout.write(json.dumps(fields) + '\n')
    sys.stdout.flush()


def wait_go():
    line = sys.stdin.readline()
    if line.strip() != 'go':
        os._exit(3)            # the driver went away


def answer_stats_forever():
    """Answer the driver's snapshot requests from a real thread, so that it
    works whatever event loop the responder runs (the loop must release the
    GIL while idle, which gevent's and asyncio's do)."""
    def loop():
        for _ in sys.stdin:
            emit(**snapshot())
        os._exit(0)
    threading.Thread(target=loop, daemon=True, name='bench-stats').start()


class Plan:
    """When a caller stops: after ``seconds``, or after the last of
    ``checkpoints`` (call counts), pausing at each one."""

    def __init__(self, seconds=None, checkpoints=()):
        self.seconds = seconds
        self.checkpoints = list(checkpoints)
        self.calls = 0

    def begin(self):
        emit(event='ready', **snapshot())
        wait_go()
        self.started()

    def started(self):
        self.start = time.perf_counter()
        self.deadline = None if self.seconds is None else self.start + self.seconds

    def more(self, calls):
        """Called between batches with the running total of calls."""
        self.calls = calls
        if self.deadline is not None:
            return time.perf_counter() < self.deadline
        if calls >= self.checkpoints[0]:
            mark = self.checkpoints.pop(0)
            if not self.checkpoints:
                return False
            emit(event='checkpoint', calls=calls, mark=mark,
                 seconds=time.perf_counter() - self.start, **snapshot())
            wait_go()
        return True

    def end(self):
        emit(event='done', calls=self.calls,
             seconds=time.perf_counter() - self.start, **snapshot())
