"""Harness of the ported upstream tests (PORTING.md): what upstream's test
run gave them implicitly, and what this project's tests always have.

- Every RPC a test creates is stopped at its teardown, passed or failed:
  upstream's tests stop theirs only on success (some never), and a server
  left bound would make the next test's bind of the same endpoint fail.
- Each test runs in its own temporary directory: the relative ipc://
  endpoints they use ('ipc://here', the testing heartbeat backend's) are
  files of that directory, never shared with another test or run.
- A hard timeout on each (they wait on the network).
"""
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
