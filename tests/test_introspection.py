"""Introspection of the C types and functions of pseud._pseud: every public
method, property and function has a docstring, inspect.signature() reads
each one (the "name($self, ...)\\n--\\n\\n" prefix of the C docstrings,
__text_signature__), and the signatures say what the C code parses:
positional-only where it takes no keywords, the keyword names where it
does. The one-line summaries of help(Client/Server/SyncClient) are
checked in test_typing.py."""
import inspect

import pytest

import pseud
from pseud import _pseud

P = inspect.Parameter
PUBLIC_TYPES = sorted((obj for name, obj in vars(_pseud).items()
                       if isinstance(obj, type) and not name.startswith('_')),
                      key=lambda cls: cls.__name__)
FUNCTIONS = sorted(name for name, obj in vars(_pseud).items()
                   if callable(obj) and not isinstance(obj, type) and not name.startswith('_'))
# what CPython itself writes when a C type gives no docstring of its own
GENERIC = ('Initialize self', 'Create and return a new object', 'Call self as a function')


def own_public_attributes(cls):
    """(name, static attribute) of what the C type itself defines."""
    if cls.__module__ != _pseud.__name__ or issubclass(cls, (BaseException, tuple)):
        return []       # Python-made exceptions, the ExtType named tuple
    # methods and descriptors; not class constants (Socket.ROUTER...) or
    # Packer.default_translation_table
    return [(name, attr) for name, attr in vars(cls).items()
            if not name.startswith('_') and hasattr(attr, '__get__')]


def test_the_module_exposes_the_types_and_functions_checked_here():
    names = {cls.__name__ for cls in PUBLIC_TYPES}
    assert {'RPC', 'Future', 'AttributeWrapper', 'Registry', 'RPCCallable', 'Packer',
            'ExtType', 'SyncClient', 'Socket', 'Context', 'Frame', 'ZMQError'} <= names
    assert {'curve_keypair', 'z85_encode', 'z85_decode', 'has', 'strerror'} <= set(FUNCTIONS)


@pytest.mark.parametrize('cls', PUBLIC_TYPES, ids=lambda cls: cls.__name__)
def test_every_public_member_of_each_c_type_has_a_docstring(cls):
    lacking = []
    for name, attr in own_public_attributes(cls):
        doc = (getattr(attr, '__doc__', None) or '').strip()
        if not doc or doc.startswith(GENERIC):
            lacking.append(name)
    assert lacking == [], 'give these a docstring in src/'
    if cls.__module__ == _pseud.__name__:
        assert (cls.__doc__ or '').strip(), cls


@pytest.mark.parametrize('cls', PUBLIC_TYPES, ids=lambda cls: cls.__name__)
def test_inspect_signature_reads_every_public_method_of_each_c_type(cls):
    failing = []
    for name, attr in own_public_attributes(cls):
        if isinstance(attr, (property, type(_pseud.Future.value), type(_pseud.RPC.user_id))):
            continue        # getset and member descriptors: attributes, not methods
        method = getattr(cls, name)
        try:
            sig = inspect.signature(method)
        except (ValueError, TypeError) as exc:
            failing.append((name, str(exc)))
            continue
        # the signature text does not leak into the docstring help() shows
        assert '--\n' not in (method.__doc__ or ''), name
        assert method.__text_signature__ is not None, name
        assert str(sig).startswith('(') and sig is not None
    assert failing == []


@pytest.mark.parametrize('name', FUNCTIONS)
def test_inspect_signature_reads_every_module_function(name):
    func = getattr(_pseud, name)
    sig = inspect.signature(func)
    assert all(p.kind is P.POSITIONAL_ONLY for p in sig.parameters.values()), sig
    assert (func.__doc__ or '').strip() and '--\n' not in func.__doc__


def params(obj):
    return [(p.name, p.kind, p.default) for p in inspect.signature(obj).parameters.values()]


def test_signatures_say_what_the_c_code_parses():
    E = P.empty
    assert params(_pseud.z85_encode) == [('data', P.POSITIONAL_ONLY, E)]
    assert params(_pseud.curve_keypair) == []
    assert params(_pseud.RPC.bind) == [('self', P.POSITIONAL_ONLY, E),
                                       ('endpoint', P.POSITIONAL_ONLY, E)]
    assert params(_pseud.RPC.send_work) == [
        ('self', P.POSITIONAL_ONLY, E), ('user_id', P.POSITIONAL_ONLY, E),
        ('name', P.POSITIONAL_ONLY, E), ('args', P.VAR_POSITIONAL, E),
        ('kwargs', P.VAR_KEYWORD, E)]
    assert params(_pseud.Future.get) == [('self', P.POSITIONAL_ONLY, E),
                                         ('block', P.POSITIONAL_OR_KEYWORD, True),
                                         ('timeout', P.POSITIONAL_OR_KEYWORD, None)]
    assert params(_pseud.Socket.poll)[-1] == ('flags', P.POSITIONAL_OR_KEYWORD, _pseud.POLLIN)
    assert params(_pseud.Registry.lookup) == [('self', P.POSITIONAL_ONLY, E),
                                              ('name', P.POSITIONAL_ONLY, E),
                                              ('predicate_kwargs', P.VAR_KEYWORD, E)]
    assert params(_pseud.Packer) == [('translation_table', P.POSITIONAL_OR_KEYWORD, None),
                                     ('max_depth', P.POSITIONAL_OR_KEYWORD, 128)]
    assert params(_pseud.Again)[0] == ('errno', P.POSITIONAL_OR_KEYWORD, _pseud.EAGAIN)
    rpc = [name for name, _, _ in params(_pseud.RPC)]
    assert rpc[:4] == ['user_id', 'peer_routing_id', 'is_server', 'timeout']
    assert 'max_message_size' in rpc
    sync = params(pseud.SyncClient)
    assert sync[:2] == [('peer_routing_id', P.POSITIONAL_OR_KEYWORD, None),
                        ('timeout', P.POSITIONAL_OR_KEYWORD, 5)]
    assert ('security_plugin', P.POSITIONAL_OR_KEYWORD, 'noop_auth_backend') in sync


def test_keyword_names_of_the_signatures_are_the_ones_the_c_code_accepts():
    """Call with the names the signatures give: the C parsers take them;
    positional-only parameters refuse keywords as the signatures say."""
    future = _pseud.Future()
    future.set(value=7)
    assert future.get(block=False, timeout=None) == 7
    assert future.result(timeout=1) == 7 and future.wait(timeout=0) == 7
    other = _pseud.Future()
    other.set_exception(exception=ValueError('x'), exc_info=None)
    assert isinstance(other.exception, ValueError)
    packer = _pseud.Packer(translation_table=None, max_depth=4)
    assert packer.max_depth == 4
    with pytest.raises(TypeError):
        packer.packb(obj=1)
    registry = _pseud.Registry(name='introspection', bases=())
    callable_ = _pseud.RPCCallable(func=len, name='n', domain='default', with_identity=False)
    registry.register(callable_)
    with pytest.raises(TypeError):
        registry.register(rpc_callable=callable_)
    assert registry.unregister(name='n', domain='default') is True
    with pytest.raises(TypeError):
        _pseud.z85_encode(data=b'1234')
    error = _pseud.ZMQError(errno=_pseud.EAGAIN, msg='m')
    assert error.errno == _pseud.EAGAIN
    sock = _pseud.Socket(context=_pseud.Context.instance(), socket_type=_pseud.DEALER)
    try:
        assert sock.poll(timeout=0, flags=_pseud.POLLIN) == 0
        with pytest.raises(TypeError):
            sock.bind(endpoint='inproc://nowhere')
    finally:
        sock.close(linger=0)


def test_help_of_the_c_types_renders_the_signatures():
    import pydoc
    text = pydoc.render_doc(_pseud.Socket, renderer=pydoc.plaintext)
    assert 'send_multipart(self, /, msg_parts, flags=0, copy=True, track=False)' in text
    text = pydoc.render_doc(pseud.SyncClient, renderer=pydoc.plaintext)
    assert 'send_work(self, name, /, *args, **kwargs)' in text
    assert 'The password sent for PLAIN security' in text
