"""Reading this package's Django settings, in one place.

Settings are read when a stack is built (not at import), so ``override_settings`` in
tests and late configuration both work. Outside a configured Django project every
setting takes its default, so ``build_stack`` also serves plain ASGI apps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from middleware_stack.exceptions import StackConfigurationError

__all__ = ["StackSettings", "blocking_ms", "read_settings"]

DEFAULT_BLOCKING_MS = 20.0
DEFAULT_THREAD_POOL_IDLE = 8
DEFAULT_THREAD_POOL_IDLE_TIMEOUT = 5.0


@dataclass(frozen=True)
class StackSettings:
    middleware: Any = ()
    checks: Any = "off"
    lifespan: Any = None
    websocket: Any = None
    blocking_ms: Any = DEFAULT_BLOCKING_MS
    thread_reuse: Any = True
    thread_pool_idle: Any = DEFAULT_THREAD_POOL_IDLE
    thread_pool_idle_timeout: Any = DEFAULT_THREAD_POOL_IDLE_TIMEOUT
    debug: bool = False


def read_settings() -> StackSettings:
    if not settings.configured:
        return StackSettings()
    debug = bool(getattr(settings, "DEBUG", False))
    return StackSettings(
        middleware=getattr(settings, "ASGI_MIDDLEWARE", ()),
        checks=getattr(settings, "ASGI_MIDDLEWARE_CHECKS", "warn" if debug else "off"),
        lifespan=getattr(settings, "ASGI_LIFESPAN", None),
        websocket=getattr(settings, "ASGI_WEBSOCKET_APPLICATION", None),
        blocking_ms=getattr(settings, "ASGI_MIDDLEWARE_BLOCKING_MS", DEFAULT_BLOCKING_MS),
        thread_reuse=getattr(settings, "ASGI_THREAD_REUSE", True),
        thread_pool_idle=getattr(settings, "ASGI_THREAD_POOL_IDLE", DEFAULT_THREAD_POOL_IDLE),
        thread_pool_idle_timeout=getattr(
            settings, "ASGI_THREAD_POOL_IDLE_TIMEOUT", DEFAULT_THREAD_POOL_IDLE_TIMEOUT
        ),
        debug=debug,
    )


def blocking_ms(value: Any) -> float:
    """``ASGI_MIDDLEWARE_BLOCKING_MS`` checked: a finite number of milliseconds >= 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value < 1e9  # also refuses inf, NaN and ints past float range
    ):
        raise StackConfigurationError(
            f"ASGI_MIDDLEWARE_BLOCKING_MS = {value!r} must be a number of milliseconds >= 0.",
            hint="The default is 20; 0 turns loop-blocking attribution off (a finite "
            "number below 1e9 ms).",
            id="middleware_stack.E010",
        )
    return float(value)
