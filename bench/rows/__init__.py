"""The rows of the benchmark: one module per implementation, all with the
same interface (see rows/README in bench/README.md):

    NAME, KIND ('gevent' | 'asyncio' | 'c'), NOT_SUPPORTED {scenario: why}
    serve(endpoint, bind)      -> endpoint     start answering echo(payload)
    connect(endpoint)          -> caller       caller.call(p), caller.call_async(p)
    reverse_caller(endpoint)   -> (endpoint, caller)   bind, call the peer that connects
    SHARED_CALLER              one caller may serve many greenlets at once

For KIND 'asyncio' the functions and caller.call are coroutines.
"""
import importlib

MODULES = {
    'raw-c': None,                       # bench/raw_c, driven by the suite directly
    'raw-pyzmq-gevent': 'rows.raw_pyzmq',
    'pseud-1.0.1': 'rows.upstream_pseud',
    'zerorpc': 'rows.zerorpc_row',
    'mprpc': 'rows.mprpc_row',
    'pseud-native': 'rows.pseud_native',
    'hang': 'rows.hang_row',             # test-only: hangs on purpose
}

PEER_VENV_ROWS = ('raw-pyzmq-gevent', 'pseud-1.0.1', 'zerorpc', 'mprpc')


def load(name):
    return importlib.import_module(MODULES[name])
