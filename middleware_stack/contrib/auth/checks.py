"""System checks for the auth passthrough, ids ``middleware_stack.W30x``.

``check_scope_user_middleware`` is registered when this package is imported (and so
at start-up when ``"middleware_stack.contrib.auth"`` is in ``INSTALLED_APPS``): it must
also run when ``ScopeUserMiddleware`` is listed but the ASGI layer is not, a case the
layer's own ``stack_checks`` (``layer_checks``) can never see. Imports go one way:
``checks`` -> ``middleware`` -> ``layer_checks`` -> ``scope_user`` -> ``user``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core import checks

from middleware_stack.contrib.auth.layer_checks import (
    AUTH_MIDDLEWARE,
    LAYER,
    SCOPE_USER,
    _is,
    _load,
    _positions,
    layer_checks,
)
from middleware_stack.contrib.auth.middleware import AuthPassthroughMiddleware
from middleware_stack.contrib.auth.scope_user import ScopeUserMiddleware

__all__ = ["check_scope_user_middleware", "layer_checks"]


def _layer_factory(entry: Any) -> Any:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, tuple | list) and entry:
        return entry[0]
    if isinstance(entry, dict):
        return entry.get("middleware") if entry.get("enabled", True) else None
    if hasattr(entry, "middleware") and hasattr(entry, "enabled"):  # middleware_stack.Layer
        return entry.middleware if entry.enabled else None
    return getattr(entry, "cls", entry)  # Starlette Middleware, or the factory itself


def _layer_listed() -> bool:
    entries = getattr(settings, "ASGI_MIDDLEWARE", None) or ()
    if not isinstance(entries, list | tuple):
        return False  # not a list: middleware_stack.E001 says so
    return any(_is(_load(_layer_factory(entry)), AuthPassthroughMiddleware) for entry in entries)


@checks.register("middleware_stack")
def check_scope_user_middleware(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    from django.contrib.auth.middleware import AuthenticationMiddleware

    mine = _positions(ScopeUserMiddleware)
    if not mine:
        return []
    messages: list[checks.CheckMessage] = []
    theirs = _positions(AuthenticationMiddleware)
    if not theirs:
        messages.append(
            checks.Warning(
                f"{SCOPE_USER} is in MIDDLEWARE without {AUTH_MIDDLEWARE}.",
                hint=f"Add {AUTH_MIDDLEWARE!r} (after SessionMiddleware) before it: requests "
                "the ASGI layer did not identify would have no request.user at all.",
                obj="settings.MIDDLEWARE",
                id="middleware_stack.W302",
            )
        )
    elif mine[0] < theirs[0]:
        messages.append(
            checks.Warning(
                f"{SCOPE_USER} is listed before {AUTH_MIDDLEWARE}, which then replaces its "
                "request.user with the session user.",
                hint=f"Move it after {AUTH_MIDDLEWARE!r} in MIDDLEWARE.",
                obj="settings.MIDDLEWARE",
                id="middleware_stack.W303",
            )
        )
    if not _layer_listed():
        messages.append(
            checks.Warning(
                f"{SCOPE_USER} is in MIDDLEWARE but {LAYER} is not in ASGI_MIDDLEWARE, so "
                "scope['auth'] is never set and request.user stays the session user.",
                hint=f"Add {LAYER!r} to ASGI_MIDDLEWARE. If asgi.py passes its own list to "
                "build_stack(), silence this check with "
                "SILENCED_SYSTEM_CHECKS = ['middleware_stack.W304'].",
                obj="settings.MIDDLEWARE",
                id="middleware_stack.W304",
            )
        )
    return messages
