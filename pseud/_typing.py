"""Types shared by the annotations of pseud's Python modules (importable at
run time so that typing.get_type_hints() resolves them)."""
from __future__ import annotations

from typing import Any, Callable, Protocol, TypeVar, overload

from ._pseud import Registry

F = TypeVar('F', bound=Callable[..., Any])


class RegisterRPC(Protocol):
    """``server.register_rpc``: register_rpc with the registry bound."""

    @overload
    def __call__(self, func: F, name: str | None = ..., domain: str = ...,
                 with_identity: bool = ...) -> F: ...

    @overload
    def __call__(self, func: str | None = ..., name: str | None = ...,
                 domain: str = ..., with_identity: bool = ...) -> Callable[[F], F]: ...


__all__ = ['F', 'RegisterRPC', 'Registry']
