"""The CPU-bound handler of the cpu-64 scenarios: pure-Python arithmetic
that holds its process (and its gevent hub) for about a millisecond.

The driver calibrates the number of rounds once per run (``calibrate``)
and gives it to every process that serves ``burn``, so that all rows and
repetitions of a run do the same work per call."""
import time

TARGET_SECONDS = 0.001


def burn(rounds):
    """``rounds`` rounds of integer arithmetic."""
    x = 0
    for i in range(rounds):
        x = (x * 31 + i) % 1000003
    return x


def calibrate(target=TARGET_SECONDS):
    """Rounds of burn() taking about ``target`` seconds on this machine:
    the fastest of five tries of a run long enough to time, the one least
    disturbed by other load."""
    rounds = 1000
    while True:
        took = []
        for _ in range(5):
            started = time.perf_counter()
            burn(rounds)
            took.append(time.perf_counter() - started)
        if min(took) > 0.02:
            return max(1, int(rounds * target / min(took)))
        rounds *= 2
