"""Registration of RPC callables, predicates and plugins (SPEC section 4).

The registry itself is native (``pseud._pseud.Registry``); this module
offers upstream pseud's Python API over it.
"""
from ._pseud import RPCCallable, Registry, register_predicate_class
from ._pseud import registry  # the process-wide registry

__all__ = ['registry', 'RPCCallable', 'Registry', 'register_rpc',
           'create_local_registry', 'get_rpc_callable', 'register_predicate',
           'register_auth_backend', 'register_heartbeat_backend',
           'auth_backends', 'heartbeat_backends']

#: security plugins by name (``cls.name``)
auth_backends = {}
#: heartbeat plugins by name (``cls.name``)
heartbeat_backends = {}

_USAGE = ("use @register_rpc, @register_rpc(name='x.y'), @register_rpc('x.y') "
          "or register_rpc(func, name='x.y')")


def register_rpc(func=None, name=None, domain='default', registry=None,
                 with_identity=False):
    """Register ``func`` for RPC under ``name`` (default ``func.__name__``).

    Works as a bare decorator, as a decorator factory (``name=`` or a str
    first argument) and as a plain call; returns ``func`` unchanged.
    Registering the same name and domain again replaces the earlier entry.
    """
    if isinstance(func, str):
        if name is not None:
            raise TypeError('register_rpc() got the name twice (%r and %r); %s'
                            % (func, name, _USAGE))
        func, name = None, func
    if name is not None and not isinstance(name, str):
        raise TypeError('register_rpc(): name must be a str, not %s; %s'
                        % (type(name).__name__, _USAGE))
    if not isinstance(domain, str):
        raise TypeError('register_rpc(): domain must be a str, not %s'
                        % type(domain).__name__)
    if registry is None:
        registry = _global_registry
    elif not isinstance(registry, Registry):
        raise TypeError('register_rpc(): registry must be a Registry (see '
                        'create_local_registry), not %s' % type(registry).__name__)

    def wrapper(fn):
        if not callable(fn):
            raise TypeError('register_rpc() needs a callable, not %s; %s'
                            % (type(fn).__name__, _USAGE))
        fn_name = name
        if fn_name is None:
            fn_name = getattr(fn, '__name__', None)
            if not isinstance(fn_name, str):
                raise TypeError('register_rpc(): %r has no __name__, pass '
                                'name=: register_rpc(func, name=\'x.y\')' % (fn,))
        registry.register(RPCCallable(fn, fn_name, domain=domain,
                                      with_identity=bool(with_identity)))
        return fn

    if func is None:
        return wrapper
    return wrapper(func)


def create_local_registry(name):
    """A registry of its own that also sees the global one (local wins)."""
    return Registry(name, bases=(_global_registry,))


def get_rpc_callable(name, registry=registry, **kw):
    """The RPCCallable registered as ``name`` whose domain predicate accepts
    ``kw``; raises ServiceNotFoundError(name)."""
    if registry is None:
        registry = _global_registry
    return registry.lookup(name, **kw)


def _plugin_name(cls, what):
    name = getattr(cls, 'name', None)
    if not isinstance(name, str):
        raise TypeError('%s %r needs a str class attribute `name`' % (what, cls))
    return name


def register_predicate(cls):
    """Class decorator: ``cls`` guards the domain ``cls.name``;
    ``cls(rpc_callable).test(**kwargs)`` decides."""
    register_predicate_class(_plugin_name(cls, 'predicate'), cls)
    return cls


def register_auth_backend(cls):
    """Class decorator: register a security plugin under ``cls.name``."""
    auth_backends[_plugin_name(cls, 'authentication backend')] = cls
    return cls


def register_heartbeat_backend(cls):
    """Class decorator: register a heartbeat plugin under ``cls.name``."""
    heartbeat_backends[_plugin_name(cls, 'heartbeat backend')] = cls
    return cls


_global_registry = registry

# the built-in predicates; pseud.predicate only needs the names above
from . import predicate  # noqa: E402,F401
