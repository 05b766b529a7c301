"""Types and introspection: mypy --strict on the examples, the command line
and a typed sample of the README; the stub of pseud._pseud against the
built module; docstrings of every public method of Client and Server."""
import ast
import inspect
import os
import subprocess
import sys

import pytest

import pseud
from pseud import _pseud

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STUB = os.path.join(ROOT, 'pseud', '_pseud.pyi')


def mypy_env():
    """mypy reads the sources and their stub (not the test build: no
    PYTHONPATH), and runs without the sanitizer run's preloads."""
    env = {k: v for k, v in os.environ.items()
           if k not in ('PYTHONPATH', 'LD_PRELOAD', 'ASAN_OPTIONS', 'PYTHONMALLOC')}
    env['MYPYPATH'] = ROOT
    return env


@pytest.mark.timeout(300)
def test_mypy_strict_passes_on_examples_cli_and_readme_sample():
    pytest.importorskip('mypy')
    cmd = [sys.executable, '-m', 'mypy', '--strict', '--no-incremental',
           '--config-file', os.path.join(ROOT, 'pyproject.toml'),
           'examples', os.path.join('pseud', 'cli.py'),
           os.path.join('tests', 'typing', 'readme_snippets.py')]
    env = mypy_env()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=280)
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'Success: no issues found in 5 source files' in done.stdout


@pytest.mark.timeout(300)
def test_mypy_sees_the_types_not_any(tmp_path):
    """The annotations and the stub are in effect: wrong uses are caught."""
    pytest.importorskip('mypy')
    wrong = tmp_path / 'wrong_use.py'
    wrong.write_text(
        'import pseud\n'
        'client = pseud.Client(peer_routing_id=1.5)\n'          # not str/bytes
        'public, secret = pseud.curve_keypair()\n'
        'total: int = public\n'                                  # bytes, not int
        'client.connect(5555)\n')                                # endpoint is a str
    env = mypy_env()
    done = subprocess.run([sys.executable, '-m', 'mypy', '--strict', '--no-incremental',
                           '--config-file', os.path.join(ROOT, 'pyproject.toml'),
                           str(wrong)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=280)
    assert done.returncode == 1, done.stdout + done.stderr
    assert 'wrong_use.py:2: error' in done.stdout
    assert 'wrong_use.py:4: error' in done.stdout
    assert 'wrong_use.py:5: error' in done.stdout


@pytest.mark.timeout(300)
@pytest.mark.skipif(os.environ.get('PSEUD_SANITIZER') is not None,
                    reason='the stub does not depend on the build variant')
def test_stubtest_finds_the_stub_consistent_with_the_built_module(tmp_path):
    """mypy's stubtest imports the built extension and compares every name,
    signature, final class and property with the stub. It runs outside the
    root: `python -m` puts the current directory first on sys.path, whose
    pseud/ has no extension (3.10 has no PYTHONSAFEPATH)."""
    pytest.importorskip('mypy.stubtest')
    env = dict(os.environ)
    env['MYPYPATH'] = ROOT              # the stub from the sources...
    env['PYTHONPATH'] = os.path.dirname(os.path.dirname(pseud.__file__))  # ...the built module
    done = subprocess.run(
        [sys.executable, '-m', 'mypy.stubtest', 'pseud._pseud',
         '--mypy-config-file', os.path.join(ROOT, 'pyproject.toml'),
         '--allowlist', os.path.join(ROOT, 'tests', 'typing', 'stubtest-allowlist.txt')],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert 'Success' in done.stdout


def _stub_tree():
    with open(STUB) as f:
        return ast.parse(f.read())


def _stub_names(body):
    names = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_stub_names_every_public_name_of_the_extension():
    tree = _stub_tree()
    in_stub = _stub_names(tree.body)
    in_module = {name for name in dir(_pseud) if not name.startswith('__')}
    assert in_module - in_stub == set(), 'add these to pseud/_pseud.pyi'
    assert in_stub - in_module == set(), 'the extension has no such names'


def test_stub_names_every_attribute_of_each_extension_type():
    classes = {node.name: node for node in _stub_tree().body
               if isinstance(node, ast.ClassDef)}
    missing = {}
    for name, node in classes.items():
        cls = getattr(_pseud, name)
        if issubclass(cls, (BaseException, tuple)):
            continue        # exceptions and the ExtType named tuple: Python-made
        own = {attr for attr in vars(cls) if not attr.startswith('__')}
        lacking = own - _stub_names(node.body)
        if lacking:
            missing[name] = sorted(lacking)
    assert missing == {}, 'add these to pseud/_pseud.pyi'


def test_py_typed_marker_ships_with_the_package():
    package = os.path.dirname(pseud.__file__)
    assert os.path.exists(os.path.join(ROOT, 'pseud', 'py.typed'))
    # the build copies it next to the extension (package-data)
    assert os.path.exists(os.path.join(package, 'py.typed')), package


GENERIC = ('Initialize self', 'Create and return a new object', 'Call self as a function')


@pytest.mark.parametrize('cls', [pseud.Client, pseud.Server, pseud.SyncClient])
def test_help_shows_a_one_line_summary_for_every_public_method(cls):
    lacking = []
    for name in dir(cls):
        if name.startswith('_'):
            continue
        static = inspect.getattr_static(cls, name)
        doc = static.__doc__ if isinstance(static, property) else inspect.getdoc(
            getattr(cls, name))
        first = (doc or '').strip().split('\n')[0]
        if not first or first.startswith(GENERIC) or not first.rstrip().endswith(('.', ')')):
            lacking.append((name, first))
    assert lacking == []
    text = pydoc_text(cls)
    methods = (('connect', 'disconnect', 'close', 'stop', 'send_work', 'packer', 'password')
               if cls is pseud.SyncClient else
               ('bind', 'connect', 'start', 'stop', 'send_to', 'register_rpc'))
    for method in methods:
        assert method in text


def pydoc_text(obj):
    import pydoc
    return pydoc.render_doc(obj, renderer=pydoc.plaintext)
