"""Which application the test client calls, and rebuilding it when settings change.

A stack reads its settings once, when it is built: that is what production wants (the
per-request path reads nothing), and why ``override_settings(CORS_...)`` alone changes
nothing. Under the test client, Django's ``setting_changed`` signal (sent by
``override_settings`` on entry and exit) marks the stack stale when the setting is one
a stack reads; the next request then takes the stack built for the settings now in
force. Stacks are kept by the values of those settings, so leaving an
``override_settings`` block finds the earlier stack again: a test suite pays one build
per distinct configuration, not one per test or request.

Settings that count: every ``ASGI_*`` and ``CORS_*`` setting, ``DEBUG`` and
``MIDDLEWARE`` (read at build time by layers and by Django's handler), and the names
(or ``PREFIX_`` prefixes) listed in ``ASGI_TEST_REBUILD_SETTINGS`` for a project's own
layers.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from middleware_stack.builder import Stack, build_stack
from middleware_stack.exceptions import StackConfigurationError
from middleware_stack.settings import overriding
from middleware_stack.test.handler import ClientDispatch
from middleware_stack.types import ASGIApp

__all__ = ["CHECKS", "application_for", "is_stack_setting"]

#: Runtime checks under the test client unless the client is given ``checks=``.
CHECKS = "strict"
PREFIXES = ("ASGI_", "CORS_")
NAMES = frozenset({"DEBUG", "MIDDLEWARE"})
#: Built stacks kept at once (least recently used dropped first).
CACHE_SIZE = 32

_lock = threading.Lock()
_generation = 0
_fingerprint: tuple[int, tuple[Any, ...]] = (-1, ())
_cache: OrderedDict[tuple[Any, ...], tuple[ASGIApp, tuple[Any, ...]]] = OrderedDict()


def _extra() -> tuple[str, ...]:
    value = getattr(settings, "ASGI_TEST_REBUILD_SETTINGS", ())
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise StackConfigurationError(
            f"ASGI_TEST_REBUILD_SETTINGS = {value!r} must be a list of setting names.",
            hint="List the settings your own layers read at build time, e.g. "
            "['MYLAYER_TIMEOUT'], or a prefix ending in '_' such as 'MYLAYER_'.",
            id="middleware_stack.E010",
        )
    return tuple(value)


def is_stack_setting(name: str, extra: tuple[str, ...] = ()) -> bool:
    """True for settings a stack (or Django's handler inside it) reads when built."""
    if name.startswith(PREFIXES) or name in NAMES:
        return True
    return any(name == e or (e.endswith("_") and name.startswith(e)) for e in extra)


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    global _generation
    try:
        extra = _extra()
    except StackConfigurationError:
        extra = ()
    if is_stack_setting(setting, extra) or setting == "ASGI_TEST_REBUILD_SETTINGS":
        with _lock:
            _generation += 1


setting_changed.connect(_on_setting_changed, dispatch_uid="middleware_stack.test")


def _current() -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """``(key, values)``: the stack settings now in force, by name and ``repr``.

    The values are kept with the cached stack, so an object whose ``repr`` shows its
    address cannot be freed and its address reused by a different one.
    """
    extra = _extra()
    names = sorted(n for n in dir(settings) if n.isupper() and is_stack_setting(n, extra))
    values = tuple(getattr(settings, n) for n in names)
    key = tuple((n, repr(v)) for n, v in zip(names, values, strict=True))
    return key, values


def generation() -> int:
    """Bumped by every change to a stack setting; clients compare it per request."""
    return _generation


def application_for(application: Any, checks: str) -> ASGIApp:
    """The ASGI app a client with these arguments calls now (built at most once per
    configuration)."""
    key, values = _current()
    cache_key = (_identity(application), checks, key)
    with _lock:
        hit = _cache.get(cache_key)
        if hit is not None:
            _cache.move_to_end(cache_key)
            return hit[0]
    app = _build(application, checks)
    with _lock:
        _cache[cache_key] = (app, (application, values))
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return app


def _identity(application: Any) -> Any:
    return application if isinstance(application, str) or application is None else id(application)


def _resolve(application: Any) -> Any:
    if application is None:
        name = getattr(settings, "ASGI_APPLICATION", None)
        if not name:
            return None
        application = name
    if isinstance(application, str):
        try:
            return import_string(application)
        except ImportError as exc:
            raise StackConfigurationError(
                f"The test client's application {application!r} cannot be imported: {exc}",
                hint="Give the dotted path of an ASGI application (ASGI_APPLICATION or the "
                "client's application= argument), e.g. 'myproject.asgi.application'.",
                id="middleware_stack.E010",
            ) from exc
    return application


def _build(application: Any, checks: str) -> ASGIApp:
    """The stack for the settings now in force, with thread reuse off and Django's
    handler replaced by each client's own (see :mod:`middleware_stack.test.handler`)."""
    from django.core.handlers.asgi import ASGIHandler

    source = _resolve(application)
    # No lifespan fallback either: the client runs no lifespan, and says so (docs/testing.rst).
    with overriding(thread_reuse=False, lifespan_fallback=False, gc_freeze=False):
        if source is None:  # what asgi.py says: build_stack(get_asgi_application())
            import django

            django.setup(set_prefix=False)
            return build_stack(ClientDispatch(), checks=checks)
        if isinstance(source, Stack):
            args = source._arguments
            inner: Any = source.app
            if isinstance(inner, ASGIHandler):
                inner = ClientDispatch(type(inner))
            return build_stack(
                inner,
                args.get("middleware"),
                checks=checks,
                lifespan=args.get("lifespan"),
                websocket=args.get("websocket"),
            )
        if isinstance(source, ASGIHandler):  # Django alone: no layers, as served
            return build_stack(ClientDispatch(type(source)), [], checks=checks)
    if not callable(source):
        raise StackConfigurationError(
            f"The test client's application {source!r} is not an ASGI application.",
            hint="Give an ASGI application or its dotted path.",
            id="middleware_stack.E010",
        )
    app: ASGIApp = source  # another ASGI app: called as it is, never rebuilt
    return app
