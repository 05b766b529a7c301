"""Registration of RPC callables, predicates and plugins
(docs/guide/registries.rst, docs/guide/plugins.rst).

The registry itself is native (``pseud._pseud.Registry``); this module
offers upstream pseud's Python API over it.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, TypeVar, overload

from ._pseud import RPCCallable, Registry, register_predicate_class
from ._pseud import registry  # the process-wide registry
from ._typing import F

__all__ = ['registry', 'RPCCallable', 'Registry', 'register_rpc',
           'create_local_registry', 'get_rpc_callable', 'register_predicate',
           'register_auth_backend', 'register_heartbeat_backend',
           'auth_backends', 'heartbeat_backends', 'PluginTable']

C = TypeVar('C', bound=type)


class PluginTable:
    """Plugins of one kind by name, each for the client side, the server
    side or both (upstream's pairs of classes sharing one name).

    Which side a class serves comes from, in order: its ``serves`` class
    attribute (``'client'``, ``'server'`` or a tuple of both: the zope-free
    way), else the interfaces given to ``@zope.component.adapter(IClient)``
    (or ``IServer``), else both sides.
    """

    SIDES = ('client', 'server')

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._by_name: dict[str, dict[str, type]] = {}

    @classmethod
    def sides_of(cls, plugin: type) -> tuple[str, ...]:
        # the nearest class saying it wins: a subclass of a client plugin
        # decorated @adapter(IServer) serves servers
        for klass in getattr(plugin, '__mro__', (plugin,)):
            attrs = vars(klass)
            if attrs.get('serves') is not None:
                return cls._sides_of_serves(plugin, attrs['serves'])
            # set by @zope.component.adapter(...): read without importing it
            adapts = (getattr(klass, '__component_adapts__', None)
                      if '__component_adapts__' in attrs else None)
            if adapts:
                names = {getattr(iface, '__name__', None) for iface in adapts}
                sides = tuple(side for side, iface in (('client', 'IClient'),
                                                       ('server', 'IServer'))
                              if iface in names)
                if sides:
                    return sides
        return cls.SIDES

    @classmethod
    def _sides_of_serves(cls, plugin: type, serves: str | tuple[str, ...]) -> tuple[str, ...]:
        sides = (serves,) if isinstance(serves, str) else tuple(serves)
        bad = [side for side in sides if side not in cls.SIDES]
        if bad or not sides:
            raise ValueError('%r.serves must be "client", "server" or both, not %r'
                             % (plugin, serves))
        return sides

    def register(self, plugin: C) -> C:
        name = _plugin_name(plugin, self.kind)
        entry = self._by_name.setdefault(name, {})
        for side in self.sides_of(plugin):
            entry[side] = plugin
        return plugin

    def lookup(self, name: str, side: str) -> type:
        """The class registered as ``name`` for ``side``; ValueError listing
        the known names otherwise."""
        entry = self._by_name.get(name) if isinstance(name, str) else None
        if not entry or side not in entry:
            known = sorted(n for n, e in self._by_name.items() if side in e)
            raise ValueError('pseud: unknown %s %r for a %s; known: %s'
                             % (self.kind, name, side, ', '.join(known)))
        return entry[side]

    def unregister(self, name: str) -> bool:
        """Forget every class registered as ``name``; True if there was one."""
        return self._by_name.pop(name, None) is not None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._by_name))


#: security plugins by name (``cls.name``)
auth_backends = PluginTable('security_plugin')
#: heartbeat plugins by name (``cls.name``)
heartbeat_backends = PluginTable('heartbeat_plugin')

_USAGE = ("use @register_rpc, @register_rpc(name='x.y'), @register_rpc('x.y') "
          "or register_rpc(func, name='x.y')")


@overload
def register_rpc(func: F, name: str | None = ..., domain: str = ...,
                 registry: Registry | None = ..., with_identity: bool = ...) -> F: ...


@overload
def register_rpc(func: str | None = ..., name: str | None = ..., domain: str = ...,
                 registry: Registry | None = ...,
                 with_identity: bool = ...) -> Callable[[F], F]: ...


def register_rpc(func: Any = None, name: str | None = None, domain: str = 'default',
                 registry: Registry | None = None, with_identity: bool = False) -> Any:
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

    def wrapper(fn: Any) -> Any:
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


def create_local_registry(name: str) -> Registry:
    """A registry of its own that also sees the global one (local wins)."""
    return Registry(name, bases=(_global_registry,))


def get_rpc_callable(name: str, registry: Registry | None = registry,
                     **kw: Any) -> RPCCallable:
    """The RPCCallable registered as ``name`` whose domain predicate accepts
    ``kw``; raises ServiceNotFoundError(name)."""
    if registry is None:
        registry = _global_registry
    return registry.lookup(name, **kw)


def _plugin_name(cls: type, what: str) -> str:
    name = getattr(cls, 'name', None)
    if not isinstance(name, str):
        raise TypeError('%s %r needs a str class attribute `name`' % (what, cls))
    return name


def register_predicate(cls: C) -> C:
    """Class decorator: ``cls`` guards the domain ``cls.name``;
    ``cls(rpc_callable).test(**kwargs)`` decides."""
    register_predicate_class(_plugin_name(cls, 'predicate'), cls)
    return cls


def register_auth_backend(cls: C) -> C:
    """Class decorator: register a security plugin under ``cls.name``
    (for the side(s) it serves, see PluginTable)."""
    return auth_backends.register(cls)


def register_heartbeat_backend(cls: C) -> C:
    """Class decorator: register a heartbeat plugin under ``cls.name``
    (for the side(s) it serves, see PluginTable)."""
    return heartbeat_backends.register(cls)


_global_registry = registry
