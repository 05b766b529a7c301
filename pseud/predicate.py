"""The built-in predicates (docs/guide/registries.rst): 'default' accepts
every call, 'restricted' needs a ``user`` allowed to 'DoSomethingNasty'.
Upstream's class names."""
import zope.interface

from .interfaces import IPredicate
from .utils import register_predicate

__all__ = ['PassThrough', 'FilterByModule']


class _Predicate:
    def __init__(self, rpc_callable):
        self.rpc_callable = rpc_callable

    @property
    def rpc_call(self):
        """Upstream's name of ``rpc_callable``."""
        return self.rpc_callable


@register_predicate
@zope.interface.implementer(IPredicate)
class PassThrough(_Predicate):
    """The 'default' domain: every call is allowed."""

    name = 'default'

    def test(self, *args, **kw):
        return True


@register_predicate
@zope.interface.implementer(IPredicate)
class FilterByModule(_Predicate):
    """The 'restricted' domain: only a ``user`` whose
    ``has_permission('DoSomethingNasty')`` is true."""

    name = 'restricted'

    def test(self, user=None, *args, **kw):
        return user is not None and user.has_permission('DoSomethingNasty')


# pseud-native's earlier names of the same classes
DefaultPredicate = PassThrough
RestrictedPredicate = FilterByModule
