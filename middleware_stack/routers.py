"""What kind of application the stack wraps: Django, a router around Django, or neither.

The boundary fixes Django's edge (header case, pooled threads, lifespan). The most common
Django websocket setup puts Django inside Channels' ``ProtocolTypeRouter``, often with
``URLRouter`` and Channels' own middleware (``AuthMiddlewareStack``,
``AllowedHostsOriginValidator``) in between. Looking only at the outermost object would
take that project for "not Django": thread reuse off, header names as Django wrote them
(Starlette's ``GZipMiddleware`` then keeps Django's ``Content-Length`` next to its own
``content-length``, and servers refuse the response), websockets refused.

Known routers are recognised by shape, not by import, so this module needs no Channels:

- a ``ProtocolTypeRouter`` (or any object with a dict ``application_mapping`` whose keys
  are scope types): the scope types it maps are the ones it handles;
- a ``URLRouter`` (``routes`` whose items carry a ``callback`` application);
- Channels middleware, which keeps the wrapped app as ``inner`` (``BaseMiddleware``) or
  ``application`` (``OriginValidator``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from middleware_stack.layer import dotted_path

__all__ = ["AppShape", "is_django", "shape_of"]

#: How deep to look for Django inside routers and their middleware.
MAX_DEPTH = 16


def is_django(app: object) -> bool:
    from django.core.handlers.asgi import ASGIHandler

    return isinstance(app, ASGIHandler)


@dataclass(frozen=True)
class AppShape:
    """``kind`` is ``"django"``, ``"router"`` (a known router or its middleware) or ``"other"``.

    ``django`` says where Django was found (``ProtocolTypeRouter['http']``), or is None;
    ``handles`` is the set of scope types the app takes, or None when it cannot be known
    (any non-Django app may take any scope type).
    """

    kind: str
    django: str | None = None
    handles: frozenset[str] | None = None

    @property
    def has_django(self) -> bool:
        return self.django is not None

    def takes(self, scope_type: str) -> bool:
        """Could the app take this scope type (never for Django alone but http)?"""
        if self.kind == "django":
            return scope_type == "http"
        return self.handles is None or scope_type in self.handles


def _mapping(app: object) -> dict[str, Any] | None:
    mapping = getattr(app, "application_mapping", None)
    if isinstance(mapping, dict) and mapping and all(isinstance(k, str) for k in mapping):
        return mapping
    return None


def _routes(app: object) -> list[Any] | None:
    routes = getattr(app, "routes", None)
    if isinstance(routes, list | tuple) and all(hasattr(r, "callback") for r in routes):
        return list(routes)
    return None


def _children(app: object) -> Iterator[tuple[str, Any]]:
    """The applications a known router or router middleware hands scopes to, labelled."""
    name = type(app).__name__
    mapping = _mapping(app)
    if mapping is not None:
        for key, value in mapping.items():
            yield f"{name}[{key!r}]", value
        return
    routes = _routes(app)
    if routes is not None:
        for route in routes:
            yield f"{name}({str(getattr(route, 'pattern', '?'))!r})", route.callback
        return
    for attr in ("inner", "application"):
        inner = getattr(app, attr, None)
        if inner is not None and callable(inner) and _is_channels(app):
            yield f"{name}.{attr}", inner
            return


def _is_channels(app: object) -> bool:
    module = type(app).__module__ or ""
    return module == "channels" or module.startswith("channels.")


def _is_router(app: object) -> bool:
    return _mapping(app) is not None or _routes(app) is not None or _is_channels(app)


def _find_django(app: object, depth: int, seen: set[int]) -> str | None:
    if depth > MAX_DEPTH or id(app) in seen:
        return None
    seen.add(id(app))
    for label, child in _children(app):
        if is_django(child):
            return label
        if _is_router(child):
            found = _find_django(child, depth + 1, seen)
            if found is not None:
                return f"{label} > {found}"
    return None


def shape_of(app: object) -> AppShape:
    """Classify ``app`` once, at build time; nothing here runs per request."""
    if is_django(app):
        return AppShape("django", django=dotted_path(app), handles=frozenset({"http"}))
    if not _is_router(app):
        return AppShape("other")
    mapping = _mapping(app)
    handles = frozenset(mapping) if mapping is not None else None
    return AppShape("router", django=_find_django(app, 0, set()), handles=handles)


def find_stack(app: object) -> tuple[Any, str]:
    """The :class:`~middleware_stack.Stack` that is ``app`` or sits in a router around it.

    Returns ``(stack, where)`` (``where`` empty when ``app`` is the stack), or ``(None, "")``.
    """
    from middleware_stack.builder import Stack

    if isinstance(app, Stack):
        return app, ""

    def search(node: object, depth: int, seen: set[int]) -> tuple[Any, str]:
        if depth > MAX_DEPTH or id(node) in seen:
            return None, ""
        seen.add(id(node))
        for label, child in _children(node):
            if isinstance(child, Stack):
                return child, label
            if _is_router(child):
                found, where = search(child, depth + 1, seen)
                if found is not None:
                    return found, f"{label} > {where}"
        return None, ""

    return search(app, 0, set())
