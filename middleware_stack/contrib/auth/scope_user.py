"""``ScopeUserMiddleware``: the ASGI layer's user as Django's ``request.user``.

Django's ``MIDDLEWARE`` cannot see ASGI scopes except through ``request.scope``; this
is the small bridge. It belongs after ``AuthenticationMiddleware``, whose session-based
``request.user`` it replaces only when the ASGI layer identified the client.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from middleware_stack.contrib.auth.user import ScopeUser

__all__ = ["ScopeUserMiddleware"]


def _constant(user: Any) -> Callable[[], Awaitable[Any]]:
    async def auser() -> Any:
        return user

    return auser


def apply_scope_user(request: Any) -> None:
    scope = getattr(request, "scope", None)
    if scope is None or scope.get("auth") is None or "user" not in scope:
        return
    user = scope["user"]
    request.user = user
    request.auser = user.aresolve if isinstance(user, ScopeUser) else _constant(user)


class ScopeUserMiddleware:
    """Make ``request.user`` / ``await request.auser()`` the scope's user.

    Only when ``scope["auth"]`` is set (the ASGI layer found an identity); otherwise the
    session user from ``AuthenticationMiddleware`` is left alone. It never calls
    ``login()`` and never writes the session: the proxy or token is asked again on every
    request, so revoking access there takes effect at once, and no session cookie
    outlives it.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        apply_scope_user(request)
        return self.get_response(request)

    async def __acall__(self, request: Any) -> Any:
        apply_scope_user(request)
        return await self.get_response(request)
