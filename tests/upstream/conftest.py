"""Harness of the ported upstream tests (PORTING.md): what upstream's test
run gave them implicitly, and what this project's tests always have.

- Every RPC a test creates is stopped at its teardown, passed or failed:
  upstream's tests stop theirs only on success (some never), and a server
  left bound would make the next test's bind of the same endpoint fail.
- Each test runs in its own temporary directory: the relative ipc://
  endpoints they use ('ipc://here', the testing heartbeat backend's) are
  files of that directory, never shared with another test or run.
- A hard timeout on each (they wait on the network).
- The ``pseud`` logger's records, DEBUG and up, go to stderr, as in a
  program that turned logging on: upstream printed what pseud-native logs
  (a late reply to a call that timed out: upstream's greenlet died with it
  and gevent printed that; pseud-native logs it at DEBUG), and
  test_timeout_and_error_received_later reads stderr for it.
"""
import logging
import sys

import pytest

import pseud.common

TIMEOUT = 30


def pytest_collection_modifyitems(config, items):
    for item in items:
        if 'upstream' in item.nodeid.split('/') and not item.get_closest_marker('timeout'):
            item.add_marker(pytest.mark.timeout(TIMEOUT))


@pytest.fixture(autouse=True)
def _own_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _stop_every_rpc(monkeypatch):
    made = []
    original = pseud.common.BaseRPC.__init__

    def recording_init(self, *args, **kw):
        made.append(self)
        original(self, *args, **kw)

    monkeypatch.setattr(pseud.common.BaseRPC, '__init__', recording_init)
    yield
    for rpc in made:
        try:
            rpc.stop()
        except Exception:       # stopped already, or never fully built
            pass


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record comes, as logging's
    lastResort does: pytest's capsys swaps sys.stderr per test."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):    # StreamHandler.__init__ sets it
        pass


@pytest.fixture(autouse=True)
def _pseud_logging_on_stderr():
    logger = logging.getLogger('pseud')
    handler = _CurrentStderr()
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter('%(levelname)s:%(name)s:%(message)s'))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield
    logger.removeHandler(handler)
    logger.setLevel(level)
