"""The documentation: docs/ builds with warnings as errors, and the
quickstart's example runs exactly as printed (docs/quickstart.rst)."""
import os
import re
import subprocess
import sys

import pytest

import pseud

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, 'docs')
# the directory this test imported pseud from: the built package
LIB = os.path.dirname(os.path.dirname(os.path.abspath(pseud.__file__)))


def _env():
    """Subprocesses import that build, never the repository's sources."""
    return dict(os.environ, PYTHONPATH=LIB, PSEUD_DOCS_LIB=LIB, PYTHONSAFEPATH='1')


@pytest.mark.skipif(os.environ.get('PSEUD_SANITIZER') == 'address',
                    reason='the plain run builds the docs; autodoc only imports '
                           'the extension, which the suite exercises anyway')
@pytest.mark.timeout(600)
def test_sphinx_build_has_no_warning(tmp_path):
    try:
        import sphinx  # noqa: F401
    except ImportError:
        pytest.fail('sphinx is missing: requirements-dev.txt installs it '
                    '(bash scripts/test.sh does)')
    out = tmp_path / 'html'
    proc = subprocess.run(
        [sys.executable, '-m', 'sphinx', '-W', '-n', '--keep-going', '-q',
         '-b', 'html', '-d', str(tmp_path / 'doctrees'), DOCS, str(out)],
        env=_env(), cwd=str(tmp_path), capture_output=True, text=True,
        timeout=540)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the reference was generated from the built extension's docstrings
    api = (out / 'api.html').read_text(encoding='utf-8')
    for name in ('pseud._pseud.Future', 'pseud._pseud.Packer', 'pseud.SyncClient',
                 'pseud.utils.register_rpc', 'pseud._pseud.Socket'):
        assert 'id="%s"' % name in api, name


def _code_blocks(path):
    """The python code-blocks of an rst file, dedented, in order."""
    text = open(path, encoding='utf-8').read()
    blocks = []
    for m in re.finditer(r'^\.\. code-block:: python\n((?:\n|   .*\n)+)', text, re.M):
        lines = m.group(1).split('\n')
        blocks.append('\n'.join(line[3:] for line in lines).strip() + '\n')
    return blocks


@pytest.mark.timeout(60)
def test_quickstart_example_runs_as_printed(tmp_path):
    blocks = {b.splitlines()[0]: b for b in _code_blocks(os.path.join(DOCS, 'quickstart.rst'))}
    server_src, client_src = blocks['# server.py'], blocks['# client.py']
    documented = "'tcp://127.0.0.1:5555'"
    assert documented in server_src and documented in client_src
    # the only change: a private endpoint instead of the documented port
    endpoint = repr('ipc://%s' % (tmp_path / 'quickstart.sock'))
    (tmp_path / 'server.py').write_text(server_src.replace(documented, endpoint))
    (tmp_path / 'client.py').write_text(client_src.replace(documented, endpoint))
    server = subprocess.Popen([sys.executable, 'server.py'], cwd=str(tmp_path), env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        client = subprocess.run([sys.executable, 'client.py'], cwd=str(tmp_path), env=_env(),
                                capture_output=True, text=True, timeout=30)
        assert client.returncode == 0, client.stdout + client.stderr
        assert client.stdout.split() == ['abc', 'DEF']
        assert server.poll() is None, 'the server stopped'
    finally:
        server.kill()
        server.wait(timeout=10)
