"""Does the pyzmq of this test run share pseud's libzmq? (docs/guide/calls.rst,
"context= and inproc with pyzmq").

A pyzmq wheel carries a libzmq of its own: its contexts cannot be shared,
and pseud's peers stay out of reach of pyzmq sockets over inproc://.
pyzmq built against the system libzmq (pip install --no-binary pyzmq
pyzmq) calls the very library pseud does: then pseud's peers without
context= live in pyzmq's zmq.green.Context.instance(), as upstream's did.

scripts/test.sh runs the suite with the wheel (the usual setup) and, on
python3's version, the tests of the shared case again in a venv with pyzmq
built from source; it sets PSEUD_TEST_SHARED_PYZMQ=1 there, and the tests
that need sharing then fail instead of skipping when it is not real (a
source build that bundled a libzmq of its own, say)."""
import ctypes
import os
import sys

SHARING_REQUIRED = os.environ.get('PSEUD_TEST_SHARED_PYZMQ') == '1'


def _zmq_ctx_new(path):
    """The address of zmq_ctx_new as the loaded object `path` finds it
    (dlsym searches its dependencies too), or None."""
    try:
        return ctypes.cast(ctypes.CDLL(path).zmq_ctx_new, ctypes.c_void_p).value
    except (OSError, AttributeError):
        return None


def pyzmq_backend_file():
    """The extension module of pyzmq's backend (it defines the base class of
    zmq.Context), or None."""
    import zmq
    for cls in zmq.Context.__mro__:
        path = getattr(sys.modules.get(cls.__module__), '__file__', None) or ''
        if path.endswith('.so'):
            return path
    return None


def pyzmq_shares_libzmq():
    """True when pyzmq's backend and pseud call the same zmq_ctx_new: one
    loaded libzmq for both."""
    from pseud import _pseud
    backend = pyzmq_backend_file()
    ours = _zmq_ctx_new(_pseud.__file__)
    return backend is not None and ours is not None and _zmq_ctx_new(backend) == ours


SHARED = pyzmq_shares_libzmq()

# for skipif/xfail: the shared case cannot happen here (and is not required)
NOT_SHARED = not SHARED and not SHARING_REQUIRED
NOT_SHARED_REASON = ("this pyzmq has a libzmq of its own (a wheel): its contexts cannot "
                     "hold pseud's sockets; scripts/test.sh runs these tests again with "
                     "pyzmq built against the system libzmq (pip install --no-binary "
                     "pyzmq pyzmq)")
