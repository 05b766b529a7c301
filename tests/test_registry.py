"""Registry, RPCCallable, predicates and register_rpc (docs/guide/registries.rst)."""
import functools
import os
import subprocess
import sys
import uuid

import pytest

from pseud import _pseud
from pseud.interfaces import ServiceNotFoundError
from pseud.utils import (RPCCallable, Registry, auth_backends,
                         create_local_registry, get_rpc_callable,
                         heartbeat_backends, register_auth_backend,
                         register_heartbeat_backend, register_predicate,
                         register_rpc, registry)


def uname(prefix='fn'):
    return '%s.%s' % (prefix, uuid.uuid4().hex)


@pytest.fixture
def cleanup():
    """Unregister (name, domain) pairs from the global registry afterwards."""
    done = []
    yield done
    for name, domain in done:
        registry.unregister(name, domain)


@pytest.fixture
def predicate_domain():
    """Register predicate classes under unique domains, removed afterwards."""
    added = []

    def add(cls):
        domain = uname('domain')
        cls.name = domain
        register_predicate(cls)
        added.append(domain)
        return domain
    yield add
    for domain in added:
        _pseud.predicates.pop(domain, None)


class User:
    def __init__(self, allowed):
        self.allowed = allowed
        self.asked = []

    def has_permission(self, perm):
        self.asked.append(perm)
        return self.allowed


# -- register_rpc call forms -----------------------------------------------

def test_bare_decorator(cleanup):
    def some_function_name():
        return 'bare'
    # a unique name through __name__
    some_function_name.__name__ = name = uname()
    cleanup.append((name, 'default'))
    decorated = register_rpc(some_function_name)
    assert decorated is some_function_name
    assert get_rpc_callable(name)() == 'bare'


def test_decorator_bare_syntax(cleanup):
    # the @ form with the function's own name
    @register_rpc
    def bare_syntax_rpc():
        return 42
    cleanup.append(('bare_syntax_rpc', 'default'))
    rc = get_rpc_callable('bare_syntax_rpc')
    assert rc.func is bare_syntax_rpc
    assert rc() == 42


def test_decorator_name_kw(cleanup):
    name = uname()
    cleanup.append((name, 'default'))

    @register_rpc(name=name)
    def f(a, b=1):
        return a + b
    assert callable(f) and f(1) == 2
    assert get_rpc_callable(name)(1, b=5) == 6


def test_decorator_str_positional(cleanup):
    name = uname()
    cleanup.append((name, 'default'))

    def f():
        return 'str positional'
    assert register_rpc(name)(f) is f
    assert get_rpc_callable(name).func is f


def test_builtin_str_lower(cleanup):
    cleanup.append(('lower', 'default'))
    assert register_rpc(str.lower) is str.lower
    rc = get_rpc_callable('lower')
    assert rc.name == 'lower'
    assert rc('ABC') == 'abc'


def test_partial_with_name(cleanup):
    name = uname()
    cleanup.append((name, 'default'))
    p = functools.partial(pow, 2)
    assert register_rpc(p, name=name) is p
    assert get_rpc_callable(name)(10) == 1024


def test_partial_without_name_is_a_type_error():
    with pytest.raises(TypeError, match='name='):
        register_rpc(functools.partial(pow, 2))


def test_lambda(cleanup):
    name = uname()
    cleanup.append((name, 'default'))
    fn = lambda x: x * 3  # noqa: E731
    assert register_rpc(fn, name=name) is fn
    assert get_rpc_callable(name)(3) == 9
    cleanup.append(('<lambda>', 'default'))
    register_rpc(fn)
    assert get_rpc_callable('<lambda>').func is fn


def test_decorator_empty_call(cleanup):
    @register_rpc()
    def empty_call_rpc():
        return 'empty'
    cleanup.append(('empty_call_rpc', 'default'))
    assert get_rpc_callable('empty_call_rpc')() == 'empty'


@pytest.mark.parametrize('call', [
    lambda: register_rpc(42),
    lambda: register_rpc(name='x')(42),
    lambda: register_rpc('x')(None),
    lambda: register_rpc(len, name=3),
    lambda: register_rpc('x', name='y'),
    lambda: register_rpc(len, domain=1),
    lambda: register_rpc(len, registry=object()),
])
def test_misuse_is_a_helpful_type_error(call):
    with pytest.raises(TypeError, match='register_rpc'):
        call()


def test_misuse_message_shows_usage():
    with pytest.raises(TypeError) as info:
        register_rpc(42)
    assert "@register_rpc(name='x.y')" in str(info.value)


# -- replacement, local and global -----------------------------------------

def test_reregistration_replaces(cleanup):
    name = uname()
    cleanup.append((name, 'default'))
    register_rpc(lambda: 1, name=name)
    before = len(registry)
    register_rpc(lambda: 2, name=name)
    assert len(registry) == before
    assert get_rpc_callable(name)() == 2


def test_local_wins_over_global(cleanup):
    name = uname()
    cleanup.append((name, 'default'))
    register_rpc(lambda: 'global', name=name)
    local = create_local_registry('local')
    register_rpc(lambda: 'local', name=name, registry=local)
    assert get_rpc_callable(name, registry=local)() == 'local'
    assert get_rpc_callable(name)() == 'global'


def test_local_sees_global(cleanup):
    name = uname()
    cleanup.append((name, 'default'))
    local = create_local_registry('local')
    assert local.bases == (registry,)
    assert local.name == 'local'
    register_rpc(lambda: 'global', name=name)
    assert get_rpc_callable(name, registry=local)() == 'global'
    assert name in local
    assert name in local.names()
    assert len(local) == 0


def test_local_registries_are_independent():
    name = uname()
    a = create_local_registry('a')
    b = create_local_registry('b')
    register_rpc(lambda: 'a', name=name, registry=a)
    assert get_rpc_callable(name, registry=a)() == 'a'
    with pytest.raises(ServiceNotFoundError):
        get_rpc_callable(name, registry=b)
    with pytest.raises(ServiceNotFoundError):
        get_rpc_callable(name)
    assert name not in b and name not in registry
    register_rpc(lambda: 'b', name=name, registry=b)
    assert get_rpc_callable(name, registry=a)() == 'a'
    assert get_rpc_callable(name, registry=b)() == 'b'


def test_registry_none_means_global(cleanup):
    name = uname()
    cleanup.append((name, 'default'))
    register_rpc(lambda: 'g', name=name, registry=None)
    assert get_rpc_callable(name, registry=None)() == 'g'


# -- domains and predicates ------------------------------------------------

def test_restricted_tried_before_default():
    name = uname()
    local = create_local_registry('l')
    register_rpc(lambda: 'default', name=name, registry=local)
    register_rpc(lambda: 'restricted', name=name, domain='restricted',
                 registry=local)
    user = User(True)
    assert get_rpc_callable(name, registry=local, user=user)() == 'restricted'
    assert user.asked == ['DoSomethingNasty']
    assert get_rpc_callable(name, registry=local, user=User(False))() == 'default'
    assert get_rpc_callable(name, registry=local)() == 'default'
    assert len(local) == 2


def test_restricted_only_needs_a_user():
    name = uname()
    local = create_local_registry('l')
    register_rpc(lambda: 'r', name=name, domain='restricted', registry=local)
    with pytest.raises(ServiceNotFoundError):
        get_rpc_callable(name, registry=local)
    with pytest.raises(ServiceNotFoundError):
        get_rpc_callable(name, registry=local, user=User(False))
    assert get_rpc_callable(name, registry=local, user=User(True))() == 'r'


def test_local_restricted_refusing_falls_back_on_global(cleanup):
    name = uname()
    cleanup.append((name, 'default'))
    register_rpc(lambda: 'global', name=name)
    local = create_local_registry('l')
    register_rpc(lambda: 'local', name=name, domain='restricted', registry=local)
    assert get_rpc_callable(name, registry=local)() == 'global'
    assert get_rpc_callable(name, registry=local, user=User(True))() == 'local'


def test_unknown_domain_refuses():
    name = uname()
    local = create_local_registry('l')
    register_rpc(lambda: 1, name=name, domain=uname('nodomain'), registry=local)
    with pytest.raises(ServiceNotFoundError):
        get_rpc_callable(name, registry=local)
    rc = RPCCallable(len, name, domain=uname('nodomain'))
    assert rc.test() is False


def test_non_default_domains_keep_registration_order(predicate_domain):
    class Yes:
        def __init__(self, rpc_callable):
            pass

        def test(self, **kw):
            return True
    first = predicate_domain(Yes)
    second = predicate_domain(type('Yes2', (Yes,), {}))
    name = uname()
    local = Registry('l')
    register_rpc(lambda: 'default', name=name, registry=local)
    register_rpc(lambda: 'first', name=name, domain=first, registry=local)
    register_rpc(lambda: 'second', name=name, domain=second, registry=local)
    assert local.lookup(name)() == 'first'
    # replacing keeps the position
    register_rpc(lambda: 'first again', name=name, domain=first, registry=local)
    assert local.lookup(name)() == 'first again'
    assert local.unregister(name, first) is True
    assert local.lookup(name)() == 'second'
    assert local.unregister(name, second) is True
    assert local.unregister(name, second) is False
    assert local.lookup(name)() == 'default'
    assert local.unregister(name) is True
    assert name not in local and len(local) == 0


def test_predicate_receives_callable_and_kwargs(predicate_domain):
    seen = []

    class Spy:
        def __init__(self, rpc_callable):
            seen.append(rpc_callable)

        def test(self, **kw):
            seen.append(kw)
            return kw.get('ok', False)
    domain = predicate_domain(Spy)
    name = uname()
    local = Registry('l')
    register_rpc(len, name=name, domain=domain, registry=local)
    rc = local.lookup(name, ok=True, other=1)
    assert seen == [rc, {'ok': True, 'other': 1}]
    assert rc.test(ok=True) is True
    assert rc.test() is False


def test_predicate_exception_propagates(predicate_domain):
    class Boom(Exception):
        pass

    class Raising:
        def __init__(self, rpc_callable):
            pass

        def test(self, **kw):
            raise Boom('nope')
    domain = predicate_domain(Raising)
    name = uname()
    local = create_local_registry('l')
    register_rpc(len, name=name, domain=domain, registry=local)
    register_rpc(len, name=name, registry=local)
    with pytest.raises(Boom):
        get_rpc_callable(name, registry=local)
    with pytest.raises(Boom):
        RPCCallable(len, name, domain=domain).test()


def test_predicate_that_unregisters_during_lookup(predicate_domain):
    local = Registry('l')
    name = uname()

    class Mutating:
        def __init__(self, rpc_callable):
            pass

        def test(self, **kw):
            local.unregister(name, domain)
            local.unregister(name)
            return False
    domain = predicate_domain(Mutating)
    register_rpc(len, name=name, domain=domain, registry=local)
    register_rpc(len, name=name, registry=local)
    with pytest.raises(ServiceNotFoundError):
        local.lookup(name)
    assert len(local) == 0


def test_builtin_predicates_are_registered():
    from pseud.predicate import DefaultPredicate, RestrictedPredicate
    assert _pseud.predicates['default'] is DefaultPredicate
    assert _pseud.predicates['restricted'] is RestrictedPredicate
    rc = RPCCallable(len, 'x')
    assert DefaultPredicate(rc).test() is True
    assert RestrictedPredicate(rc).test() is False
    assert RestrictedPredicate(rc).test(user=User(True)) is True


@pytest.mark.parametrize('first', ['pseud.utils', 'pseud.predicate'])
def test_builtin_predicates_whatever_the_import_order(first):
    code = ('import %s, pseud._pseud as p; '
            'assert sorted(p.predicates) == ["default", "restricted"]' % first)
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run([sys.executable, '-c', code], check=True, cwd=here)


# -- RPCCallable -------------------------------------------------------------

def test_rpccallable_attributes_call_and_test():
    def f(*a, **kw):
        return a, kw
    rc = RPCCallable(f, 'f.name')
    assert rc.func is f
    assert rc.name == 'f.name'
    assert rc.domain == 'default'
    assert rc.with_identity is False
    assert rc(1, 2, x=3) == ((1, 2), {'x': 3})
    assert rc() == ((), {})
    assert rc.test() is True
    assert rc.test(user=None) is True
    assert 'f.name' in repr(rc)
    rc2 = RPCCallable(f, 'g', domain='restricted', with_identity=True)
    assert rc2.domain == 'restricted'
    assert rc2.with_identity is True
    assert rc2.test() is False
    assert rc2.test(user=User(True)) is True
    with pytest.raises(AttributeError):
        rc.func = len


def test_rpccallable_validates():
    with pytest.raises(TypeError):
        RPCCallable(42, 'x')
    with pytest.raises(TypeError):
        RPCCallable(len, b'x')
    with pytest.raises(TypeError):
        RPCCallable(len, 'x', domain=None)


def test_with_identity_flag_is_stored(cleanup):
    name = uname()
    cleanup.append((name, 'default'))
    register_rpc(lambda ident: ident, name=name, with_identity=True)
    assert get_rpc_callable(name).with_identity is True


# -- not found ---------------------------------------------------------------

def test_not_found_carries_the_name():
    name = uname()
    with pytest.raises(ServiceNotFoundError) as info:
        get_rpc_callable(name)
    assert str(info.value) == name
    assert info.value.args == (name,)


@pytest.mark.parametrize('bad', [b'bytes', 42, None, ('a',), ['unhashable']])
def test_non_str_name_is_not_found(bad):
    with pytest.raises(ServiceNotFoundError) as info:
        get_rpc_callable(bad)
    assert str(info.value) == repr(bad)
    assert bad not in registry
    assert registry.unregister(bad) is False


# -- Registry ----------------------------------------------------------------

def test_registry_constructor_and_methods():
    r = Registry()
    assert r.name == '' and r.bases == ()
    with pytest.raises(TypeError):
        Registry('x', bases=(object(),))
    with pytest.raises(TypeError):
        r.register(len)
    base = Registry('base')
    child = Registry('child', bases=[base])
    assert child.bases == (base,)
    base.register(RPCCallable(len, 'b'))
    child.register(RPCCallable(len, 'c'))
    child.register(RPCCallable(len, 'a', domain='restricted'))
    assert child.names() == ['a', 'b', 'c']
    assert base.names() == ['b']
    assert len(child) == 2 and len(base) == 1
    assert 'b' in child and 'c' not in base
    assert child.lookup('b').name == 'b'
    assert 'child' in repr(child)


def test_global_registry_is_module_attribute():
    assert _pseud.registry is registry
    assert isinstance(registry, Registry)


def test_plugin_decorators():
    class Auth:
        name = uname('auth')

    class Heart:
        name = uname('heart')
    try:
        assert register_auth_backend(Auth) is Auth
        assert auth_backends.lookup(Auth.name, 'client') is Auth
        assert auth_backends.lookup(Auth.name, 'server') is Auth
        assert register_heartbeat_backend(Heart) is Heart
        assert heartbeat_backends.lookup(Heart.name, 'server') is Heart
    finally:
        auth_backends.unregister(Auth.name)
        heartbeat_backends.unregister(Heart.name)
    with pytest.raises(TypeError):
        register_auth_backend(type('NoName', (), {}))
    with pytest.raises(TypeError):
        register_predicate(type('NoName', (), {}))
