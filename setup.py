"""Build of pseud._pseud: C sources in src/, flags from pkg-config.

The pkg-config look-up happens when the extension is built (build_ext),
not when this file is imported: an sdist (``python -m build --sdist``) or
the package metadata can be made on a machine without libzmq or msgpack-c.

Each build variant (plain, ``PSEUD_SANITIZE=address``, ``PSEUD_WERROR``...)
compiles into a temporary directory of its own, named after its flags, and
an extension left in the build directory by another variant is rebuilt,
never reused: an ASan build after a plain one gets ASan objects.
"""
import glob
import hashlib
import os
import shlex
import subprocess

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import SetupError


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
        raise SetupError('pseud: %s not found by pkg-config (tried %s); install it, '
                         'on Debian: apt-get install pkg-config %s'
                         % (what, ', '.join(names), package))
    return found


def variant_flags():
    """(compile args, link args, variant name) from the environment."""
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
    name = ('sanitize-' + sanitize) if sanitize else 'plain'
    return extra_compile, extra_link, name


class BuildPseud(build_ext):
    """build_ext that finds libzmq and msgpack-c only when it runs, and keeps
    each flag set's objects apart."""

    _variant = None

    def _configure(self):
        # here, not in finalize_options: making an sdist finalizes build_ext
        # (to list the sources) without building anything
        if self._variant is not None:
            return
        zmq_cflags, zmq_libs = require('libzmq', ['libzmq'], 'libzmq3-dev')
        # msgpack-c 6 is 'msgpack-c' (Debian 13), msgpack-c 4 is 'msgpack' (Debian 12)
        mp_cflags, mp_libs = require('msgpack-c', ['msgpack-c', 'msgpack'],
                                     'libmsgpack-c-dev (or libmsgpack-dev)')
        extra_compile, extra_link, name = variant_flags()
        compile_args = zmq_cflags + mp_cflags + extra_compile
        link_args = zmq_libs + mp_libs + extra_link
        for ext in self.extensions:
            ext.extra_compile_args = compile_args
            ext.extra_link_args = link_args
        key = hashlib.sha256(repr((compile_args, link_args, os.environ.get('CC'),
                                   os.environ.get('CFLAGS'), os.environ.get('LDFLAGS'))
                                  ).encode()).hexdigest()[:12]
        self._variant = '%s-%s' % (name, key)
        self._stamp_dir = self.build_temp
        self.build_temp = os.path.join(self.build_temp, self._variant)

    def _stamp(self):
        # which variant last wrote the extension into this build_lib
        where = hashlib.sha256(os.path.abspath(self.build_lib).encode()).hexdigest()[:12]
        return os.path.join(self._stamp_dir, 'pseud-variant-%s' % where)

    def run(self):
        self._configure()
        stamp = self._stamp()
        try:
            with open(stamp) as f:
                previous = f.read()
        except OSError:
            previous = None
        if previous != self._variant:
            # the extension in build_lib (if any) was linked with other flags:
            # "up to date" by its timestamp, but not what is asked for
            self.force = True
        super().run()
        os.makedirs(os.path.dirname(stamp), exist_ok=True)
        with open(stamp, 'w') as f:
            f.write(self._variant)


setup(
    cmdclass={'build_ext': BuildPseud},
    ext_modules=[
        Extension(
            'pseud._pseud',
            sources=sorted(glob.glob('src/*.c')),
            depends=sorted(glob.glob('src/*.h')),
        )
    ],
)
