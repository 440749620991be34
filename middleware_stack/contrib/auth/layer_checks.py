"""``AuthPassthroughMiddleware.stack_checks``: is the Django-side bridge installed?

Below the layer in the import graph (it imports only ``scope_user``), so the layer can
import it at module level; the registered system checks in ``checks`` sit above both.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

from middleware_stack.contrib.auth.scope_user import ScopeUserMiddleware

__all__ = ["layer_checks"]

AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"
SCOPE_USER = "middleware_stack.contrib.auth.ScopeUserMiddleware"
LAYER = "middleware_stack.contrib.auth.AuthPassthroughMiddleware"


def _load(path: Any) -> Any:
    if not isinstance(path, str):
        return path
    try:
        return import_string(path)
    except Exception:  # middleware_stack's own checks report a bad entry, with its index
        return None


def _is(obj: Any, cls: type) -> bool:
    return isinstance(obj, type) and issubclass(obj, cls)


def _positions(cls: type) -> list[int]:
    return [
        i for i, p in enumerate(getattr(settings, "MIDDLEWARE", None) or ()) if _is(_load(p), cls)
    ]


def layer_checks(layer: Any, deploy: bool) -> list[checks.CheckMessage]:
    """``AuthPassthroughMiddleware.stack_checks``: the layer is present; is the bridge?"""
    if deploy or _positions(ScopeUserMiddleware):
        return []
    return [
        checks.Warning(
            f"{LAYER} is in ASGI_MIDDLEWARE but {SCOPE_USER} is not in MIDDLEWARE, so Django "
            "views see the session user in request.user, not the identity the layer found.",
            hint=f"Add {SCOPE_USER!r} to MIDDLEWARE after {AUTH_MIDDLEWARE!r}; not needed if "
            "only websocket apps read scope['user'].",
            obj="settings.ASGI_MIDDLEWARE",
            id="middleware_stack.W305",
        )
    ]
