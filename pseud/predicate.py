"""The built-in predicates: 'default' accepts everything, 'restricted'
needs a user allowed to 'DoSomethingNasty'."""
from .utils import register_predicate

__all__ = ['DefaultPredicate', 'RestrictedPredicate']


@register_predicate
class DefaultPredicate:
    """Domain 'default': accepts every call."""

    name = 'default'

    def __init__(self, rpc_callable):
        self.rpc_callable = rpc_callable

    def test(self, *args, **kw):
        return True


@register_predicate
class RestrictedPredicate:
    """Domain 'restricted': accepts a call only when given ``user=``
    whose ``has_permission('DoSomethingNasty')`` is true."""

    name = 'restricted'

    def __init__(self, rpc_callable):
        self.rpc_callable = rpc_callable

    def test(self, user=None, *args, **kw):
        return user is not None and user.has_permission('DoSomethingNasty')
