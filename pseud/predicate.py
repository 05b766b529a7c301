"""The built-in predicates: 'default' accepts everything, 'restricted'
needs a user allowed to 'DoSomethingNasty'."""
from .utils import register_predicate

__all__ = ['DefaultPredicate', 'RestrictedPredicate']


@register_predicate
class DefaultPredicate:
    name = 'default'

    def __init__(self, rpc_callable):
        self.rpc_callable = rpc_callable

    def test(self, *args, **kw):
        return True


@register_predicate
class RestrictedPredicate:
    name = 'restricted'

    def __init__(self, rpc_callable):
        self.rpc_callable = rpc_callable

    def test(self, user=None, *args, **kw):
        return user is not None and user.has_permission('DoSomethingNasty')
