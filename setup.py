"""Build of pseud._pseud: C sources in src/, flags from pkg-config."""
import glob
import os
import shlex
import subprocess
import sys

from setuptools import Extension, setup


def pkg_config(*names):
    """Return (cflags, libs) of the first pkg-config name found, else None."""
    for name in names:
        try:
            cflags = subprocess.check_output(
                ['pkg-config', '--cflags', name], stderr=subprocess.DEVNULL, text=True)
            libs = subprocess.check_output(
                ['pkg-config', '--libs', name], stderr=subprocess.DEVNULL, text=True)
        except (OSError, subprocess.CalledProcessError):
            continue
        return shlex.split(cflags), shlex.split(libs)
    return None


def require(what, names, package):
    found = pkg_config(*names)
    if found is None:
        sys.exit('pseud: %s not found by pkg-config (tried %s); install it, on '
                 'Debian: apt-get install pkg-config %s'
                 % (what, ', '.join(names), package))
    return found


zmq_cflags, zmq_libs = require('libzmq', ['libzmq'], 'libzmq3-dev')
# msgpack-c 6 is 'msgpack-c' (Debian 13), msgpack-c 4 is 'msgpack' (Debian 12)
mp_cflags, mp_libs = require('msgpack-c', ['msgpack-c', 'msgpack'],
                             'libmsgpack-c-dev (or libmsgpack-dev)')

extra_compile = ['-std=c11', '-Wall', '-Wextra', '-Wno-missing-field-initializers',
                 # a function missing from an older Python's C API must fail the
                 # build, not become an implicit int-returning call
                 '-Werror=implicit-function-declaration',
                 '-fvisibility=hidden']
extra_link = []
# PSEUD_SANITIZE=address builds the AddressSanitizer variant CI also tests.
sanitize = os.environ.get('PSEUD_SANITIZE')
if sanitize:
    extra_compile += ['-fsanitize=' + sanitize, '-fno-omit-frame-pointer', '-O1', '-g']
    if sanitize == 'address':
        # greenlet switches by memcpy-ing C stacks: redzones between locals
        # of our frames on a switching greenlet's stack would be reported as
        # overflows. Heap, globals and use-after-free stay checked.
        extra_compile += ['--param=asan-stack=0']
    extra_link += ['-fsanitize=' + sanitize]
if os.environ.get('PSEUD_WERROR'):
    extra_compile.append('-Werror')

setup(
    ext_modules=[
        Extension(
            'pseud._pseud',
            sources=sorted(glob.glob('src/*.c')),
            depends=sorted(glob.glob('src/*.h')),
            extra_compile_args=zmq_cflags + mp_cflags + extra_compile,
            extra_link_args=zmq_libs + mp_libs + extra_link,
        )
    ],
)
