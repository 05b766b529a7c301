"""The package as published: the sdist builds without libzmq and runs the
suite once installed; the binary wheel runs with the system's libzmq
hidden; build variants never share objects.

Slow (they build and install into fresh virtualenvs, fetching gevent and
the test tools from the package index): marked `packaging`, so
`bash scripts/test.sh -m packaging` runs only these and
`-m 'not packaging'` skips them.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = [
    pytest.mark.packaging,
    pytest.mark.skipif(os.environ.get('PSEUD_SANITIZER') is not None,
                       reason='packaging does not depend on the build variant: '
                              'checked in the plain run'),
]


def clean_env(**extra):
    """This process's environment without what points at the test build
    (PYTHONPATH) or the sanitizer run, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if k not in ('PYTHONPATH', 'LD_PRELOAD', 'ASAN_OPTIONS', 'PYTHONMALLOC',
                        'PSEUD_SANITIZE', 'PSEUD_SANITIZER', 'VIRTUAL_ENV')}
    env.update(extra)
    return env


def run(cmd, timeout, **kw):
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    assert done.returncode == 0, '%s\n%s\n%s' % (cmd, done.stdout[-4000:], done.stderr[-4000:])
    return done


def fresh_venv(path):
    run([sys.executable, '-m', 'venv', str(path)], 120, env=clean_env())
    return os.path.join(str(path), 'bin', 'python')


def base_python():
    """The interpreter the venvs are made from (any will do: the venv module
    uses the base installation)."""
    return sys.executable


# ---------------------------------------------------------------- sdist

@pytest.mark.timeout(1500)
def test_sdist_builds_without_libzmq_installs_and_passes_tests(tmp_path):
    # 1. no libzmq, no msgpack-c as far as the build can tell
    no_libs = clean_env(PKG_CONFIG_LIBDIR=str(tmp_path / 'no-pkgconfig'),
                        PKG_CONFIG_PATH='')
    for name in ('libzmq', 'msgpack', 'msgpack-c'):
        probe = subprocess.run(['pkg-config', '--exists', name], env=no_libs)
        assert probe.returncode != 0, 'pkg-config still finds %s' % name
    outdir = tmp_path / 'dist'
    run([sys.executable, '-m', 'build', '--sdist', '--outdir', str(outdir), ROOT],
        600, env=no_libs, cwd=ROOT)
    [sdist] = glob.glob(str(outdir / 'pseud_native-*.tar.gz'))

    # 2. it holds everything to build and test
    with tarfile.open(sdist) as tar:
        names = {name.split('/', 1)[1] for name in tar.getnames() if '/' in name}
    for needed in ('LICENSE', 'README.md', 'setup.py', 'pyproject.toml', 'tox.ini',
                   'toxfile.py', 'MANIFEST.in', 'requirements-dev.txt', 'src/rpc.c', 'src/rpc.h',
                   'pseud/__init__.py', 'pseud/_pseud.pyi', 'pseud/py.typed',
                   'pseud/cli.py', 'pseud/_gevent.py', 'pseud/_plugin.py',
                   'tests/conftest.py', 'tests/upstream/PORTING.md',
                   'tests/upstream/test_auth.py', 'tests/interop/upstream_peer.py',
                   'tests/interop/requirements.txt', 'tests/typing/readme_snippets.py',
                   'examples/server.py', 'examples/client.py', 'scripts/test.sh',
                   'scripts/wheel.sh', 'bench/run.sh'):
        assert needed in names, needed
    assert set(glob.glob(os.path.join(ROOT, 'src', '*.[ch]'))) and all(
        'src/' + os.path.basename(p) in names for p in glob.glob(os.path.join(ROOT, 'src', '*.[ch]')))
    for name in names:
        assert not name.startswith(('.venv', 'build/', 'dist/')), name
        assert not name.endswith(('.so', '.o', '.pyc')), name

    # 3. installed into a fresh venv (here libzmq is there to build against)
    python = fresh_venv(tmp_path / 'venv')
    run([python, '-m', 'pip', 'install', '-q', '--disable-pip-version-check',
         sdist + '[test]'], 900, env=clean_env())
    unpacked = tmp_path / 'unpacked'
    with tarfile.open(sdist) as tar:
        tar.extractall(unpacked, filter='data')
    [srcdir] = glob.glob(str(unpacked / 'pseud_native-*'))

    # 4. a part of the suite, from the sdist's tests, against the installed
    # package (PYTHONSAFEPATH: the unpacked pseud/ sources, which have no
    # extension, must not shadow it)
    env = clean_env(PYTHONSAFEPATH='1')
    where = run([python, '-c', 'import pseud; print(pseud.__file__, pseud.__version__)'],
                60, env=env, cwd=srcdir).stdout
    assert str(tmp_path / 'venv') in where, where
    done = subprocess.run(
        [os.path.join(str(tmp_path / 'venv'), 'bin', 'pytest'), '-q', '-p',
         'no:cacheprovider', 'tests/test_codec.py', 'tests/test_registry.py',
         'tests/test_rpc.py', 'tests/test_cli.py'],
        cwd=srcdir, env=env, capture_output=True, text=True, timeout=900)
    tail = done.stdout[-3000:] + done.stderr[-2000:]
    assert done.returncode == 0, tail
    passed = re.search(r'(\d+) passed', done.stdout)
    assert passed and int(passed.group(1)) >= 100, tail
    assert 'failed' not in done.stdout.splitlines()[-1], tail
    # the console script was installed
    version = run([os.path.join(str(tmp_path / 'venv'), 'bin', 'pseud'), '--version'],
                  60, env=env).stdout
    assert version.startswith('pseud-native ')


# ---------------------------------------------------------------- wheel

CHILD = r'''
import ctypes, json, sys
# 1. the system libzmq cannot be loaded in here
try:
    ctypes.CDLL('libzmq.so.5')
except OSError as exc:
    hidden = str(exc)
else:
    print(json.dumps({'hidden': None}))
    sys.exit(0)
# 2. a real call over tcp loopback with the wheel's pseud
import gevent, pseud
server = pseud.Server('wheel')
endpoint = server.bind('tcp://127.0.0.1:*')
server.register_rpc(name='math.add')(lambda a, b: a + b)
server.start()
client = pseud.Client('wheel')
client.connect(endpoint)
result = client.math.add(2, 40).get(timeout=30)
client.stop()
server.stop()
# 3. where the libzmq mapped into this process comes from
with open('/proc/self/maps') as f:
    mapped = sorted({line.split()[-1] for line in f
                     if 'libzmq' in line or 'libsodium' in line})
print(json.dumps({'hidden': hidden, 'result': result, 'mapped': mapped,
                  'pseud': pseud.__file__}))
'''


def system_libraries(prefixes):
    """Real files of the system's shared libraries whose names start with
    one of ``prefixes`` (from the loader's cache)."""
    out = subprocess.run(['ldconfig', '-p'], capture_output=True, text=True).stdout
    found = set()
    for line in out.splitlines():
        name, _, path = line.strip().partition(' => ')
        if name.startswith(prefixes) and path:
            found.add(os.path.realpath(path))
    return sorted(found)


@pytest.mark.timeout(1200)
def test_wheel_works_with_the_system_libzmq_hidden(tmp_path):
    if not shutil.which('unshare'):
        pytest.skip('needs unshare (util-linux) to hide the system libzmq')
    outdir = tmp_path / 'wheelhouse'
    built = run(['bash', os.path.join(ROOT, 'scripts', 'wheel.sh'), str(outdir)], 900,
                env=clean_env(), cwd=ROOT)
    wheel = built.stdout.strip().splitlines()[-1]
    assert re.search(r'pseud_native-.*-manylinux_\d+_\d+_x86_64\.whl$', wheel), wheel
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        entry_points = zf.read(next(n for n in names if n.endswith('.dist-info/entry_points.txt')))
    bundled = [n for n in names if n.startswith('pseud_native.libs/')]
    for shipped in ('pseud/py.typed', 'pseud/_pseud.pyi', 'pseud/cli.py', 'pseud/__main__.py'):
        assert shipped in names, shipped
    assert b'pseud = pseud.cli:main' in entry_points
    assert any(n.endswith('.dist-info/licenses/LICENSE') for n in names), names
    assert any(os.path.basename(n).startswith('libzmq-') for n in bundled), bundled
    assert any(os.path.basename(n).startswith('libsodium-') for n in bundled), bundled

    python = fresh_venv(tmp_path / 'venv')
    run([python, '-m', 'pip', 'install', '-q', '--disable-pip-version-check', wheel],
        600, env=clean_env())
    child = tmp_path / 'child.py'
    child.write_text(CHILD)

    # Hide the system's libzmq, libsodium and msgpack-c: in a private mount
    # namespace, /dev/null is bind-mounted over each real library file, so
    # the loader finds the name but cannot load it ("file too short").
    hide = system_libraries(('libzmq.so', 'libsodium.so', 'libmsgpack'))
    assert any('libzmq.so.5' in os.path.basename(p) or 'libzmq.so' in p for p in hide), hide
    mounts = ' && '.join('mount --bind /dev/null %s' % p for p in hide)
    unshare = ['unshare', '-m'] if os.geteuid() == 0 else ['unshare', '-rm']
    probe = subprocess.run(unshare + ['true'], capture_output=True)
    if probe.returncode != 0:
        pytest.skip('cannot make a mount namespace here: %s' % probe.stderr.decode())
    done = run(unshare + ['sh', '-c', '%s && exec "$0" "$1"' % mounts, python, str(child)],
               120, env=clean_env(), cwd=str(tmp_path))
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report['hidden'], 'the system libzmq was still loadable'
    assert report['result'] == 42
    libs_dir = os.path.join(str(tmp_path / 'venv'), 'lib')
    zmq = [p for p in report['mapped'] if 'libzmq' in os.path.basename(p)]
    assert zmq, report
    for path in report['mapped']:
        # every libzmq/libsodium mapped comes from the wheel's vendored copies
        assert path.startswith(libs_dir) and '/pseud_native.libs/' in path, report
    assert report['pseud'].startswith(libs_dir), report


# ---------------------------------------------------------------- variants

def _extension(lib):
    [path] = glob.glob(os.path.join(lib, 'pseud', '_pseud*.so'))
    with open(path, 'rb') as f:
        return path, f.read()


@pytest.mark.timeout(900)
def test_sanitizer_build_after_a_plain_one_does_not_reuse_its_objects(tmp_path):
    base = tmp_path / 'build'
    lib = str(base / 'lib')

    def build(**extra):
        run([sys.executable, 'setup.py', '-q', 'build', '--build-base', str(base),
             '--build-lib', lib], 600, env=clean_env(**extra), cwd=ROOT)
        return _extension(lib)

    _, plain = build()
    assert b'__asan_init' not in plain
    _, asan = build(PSEUD_SANITIZE='address')
    assert b'__asan_init' in asan           # rebuilt, not the plain one reused
    temps = glob.glob(str(base / 'temp.*' / '*'))
    variants = sorted(os.path.basename(p) for p in temps if os.path.isdir(p))
    assert [v.split('-')[0] for v in variants] == ['plain', 'sanitize'], variants
    _, again = build()
    assert b'__asan_init' not in again      # and back
