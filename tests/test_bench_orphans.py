"""The benchmark leaves no process behind: bench/suite.py driving a row that
hangs on purpose (bench/rows/hang_row.py: children that ignore SIGTERM,
leave their process group, or are orphaned) must end every one of them,
when the row times out and when the suite itself is terminated."""
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

pytestmark = pytest.mark.timeout(90)

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'bench')


def _tagged(tag):
    """Live (non-zombie) processes whose environment holds the tag."""
    needle = ('BENCH_TEST_TAG=%s' % tag).encode()
    found = []
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/environ' % name, 'rb') as fh:
                if needle not in fh.read().split(b'\0'):
                    continue
            with open('/proc/%s/stat' % name) as fh:
                if fh.read().rsplit(')', 1)[1].split()[0] == 'Z':
                    continue
        except OSError:
            continue
        found.append(int(name))
    return found


def _suite(tmp_path, only, line_timeout):
    tag = uuid.uuid4().hex
    pidfile = tmp_path / 'pids'
    env = dict(os.environ, BENCH_TEST_TAG=tag, BENCH_HANG_PIDFILE=str(pidfile))
    argv = [sys.executable, os.path.join(BENCH, 'suite.py'),
            '--native-python', sys.executable, '--native-path', BENCH,
            '--peers-python', sys.executable, '--raw-c', str(tmp_path / 'no-raw-c'),
            '--rows', 'hang', '--only', only, '--quick',
            '--line-timeout', str(line_timeout)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    return proc, tag, pidfile


def _pids(pidfile):
    return [int(p) for p in pidfile.read_text().split()] if pidfile.exists() else []


def _alive_of(pids, tag):
    tagged = set(_tagged(tag))
    return [p for p in pids if p in tagged]


def test_a_hanging_row_leaves_no_process(tmp_path):
    proc, tag, pidfile = _suite(tmp_path, 'sequential,processes-50', line_timeout=3)
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert 'ERROR hang sequential: no answer within 3' in out, out
    assert 'ERROR hang processes-50: no answer within 3' in out, out
    started = _pids(pidfile)
    # sequential: responder, its child, caller, its two children; processes-50:
    # a responder and its child, then 50 clients with two children each
    assert len(started) >= 5 + 2 + 50, (len(started), out)
    assert _alive_of(started, tag) == []
    assert _tagged(tag) == []


def test_a_terminated_suite_leaves_no_process(tmp_path):
    proc, tag, pidfile = _suite(tmp_path, 'sequential', line_timeout=60)
    try:
        deadline = time.monotonic() + 40
        while len(_pids(pidfile)) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        started = _pids(pidfile)
        assert len(started) >= 5, 'the hanging row did not start in time'
        assert len(_alive_of(started, tag)) >= 5   # they do hang until killed
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, out
    assert _tagged(tag) == []
