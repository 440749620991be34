"""Reading this package's Django settings, in one place.

Settings are read when a stack is built (not at import), so ``override_settings`` in
tests and late configuration both work. Outside a configured Django project every
setting takes its default, so ``build_stack`` also serves plain ASGI apps.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings

from middleware_stack.exceptions import StackConfigurationError
from middleware_stack.threads import DEFAULT_MAX_THREADS

__all__ = [
    "KNOWN_SETTINGS",
    "OTHER_ASGI_SETTINGS",
    "StackSettings",
    "blocking_ms",
    "non_negative",
    "overriding",
    "read_settings",
    "shown",
]

#: Every setting this package reads (manage.py check warns on near-misses of these).
KNOWN_SETTINGS = (
    "ASGI_MIDDLEWARE",
    "ASGI_MIDDLEWARE_CHECKS",
    "ASGI_MIDDLEWARE_BLOCKING_MS",
    "ASGI_LIFESPAN",
    "ASGI_LIFESPAN_FALLBACK",
    "ASGI_WEBSOCKET_APPLICATION",
    "ASGI_THREAD_REUSE",
    "ASGI_THREAD_POOL_IDLE",
    "ASGI_THREAD_POOL_IDLE_TIMEOUT",
    "ASGI_THREAD_POOL_MAX",
    "ASGI_ONE_HOP",
    "ASGI_HOP_QUEUE",
    "ASGI_GC_FREEZE",
    "ASGI_TEST_REBUILD_SETTINGS",
)
#: ``ASGI_*`` settings of other projects (Django, Channels, daphne): never a near-miss.
OTHER_ASGI_SETTINGS = frozenset({"ASGI_APPLICATION"})

DEFAULT_BLOCKING_MS = 20.0
DEFAULT_THREAD_POOL_IDLE = 8
DEFAULT_THREAD_POOL_IDLE_TIMEOUT = 5.0
DEFAULT_THREAD_POOL_MAX = DEFAULT_MAX_THREADS


@dataclass(frozen=True)
class StackSettings:
    middleware: Any = ()
    checks: Any = "off"
    lifespan: Any = None
    lifespan_fallback: Any = True
    websocket: Any = None
    blocking_ms: Any = DEFAULT_BLOCKING_MS
    thread_reuse: Any = True
    thread_pool_idle: Any = DEFAULT_THREAD_POOL_IDLE
    thread_pool_idle_timeout: Any = DEFAULT_THREAD_POOL_IDLE_TIMEOUT
    thread_pool_max: Any = DEFAULT_THREAD_POOL_MAX
    one_hop: Any = True
    hop_queue: Any = True
    gc_freeze: Any = True
    debug: bool = False


#: Values that stand in for settings while a stack is built (see :func:`overriding`).
_overrides: ContextVar[dict[str, Any] | None] = ContextVar("stack_settings_overrides", default=None)


@contextmanager
def overriding(**values: Any) -> Iterator[None]:
    """Build stacks in this block as if these :class:`StackSettings` fields were set.

    Why not ``override_settings``: the test client builds its stacks with thread reuse
    off, and must neither change what the project's own code reads nor fire
    ``setting_changed`` (which is what tells it to rebuild).
    """
    token = _overrides.set({**(_overrides.get() or {}), **values})
    try:
        yield
    finally:
        _overrides.reset(token)


def read_settings() -> StackSettings:
    conf = _read()
    extra = _overrides.get()
    return replace(conf, **extra) if extra else conf


def _read() -> StackSettings:
    if not settings.configured:
        return StackSettings()
    debug = bool(getattr(settings, "DEBUG", False))
    return StackSettings(
        middleware=getattr(settings, "ASGI_MIDDLEWARE", ()),
        checks=getattr(settings, "ASGI_MIDDLEWARE_CHECKS", "warn" if debug else "off"),
        lifespan=getattr(settings, "ASGI_LIFESPAN", None),
        lifespan_fallback=getattr(settings, "ASGI_LIFESPAN_FALLBACK", True),
        websocket=getattr(settings, "ASGI_WEBSOCKET_APPLICATION", None),
        blocking_ms=getattr(settings, "ASGI_MIDDLEWARE_BLOCKING_MS", DEFAULT_BLOCKING_MS),
        thread_reuse=getattr(settings, "ASGI_THREAD_REUSE", True),
        thread_pool_idle=getattr(settings, "ASGI_THREAD_POOL_IDLE", DEFAULT_THREAD_POOL_IDLE),
        thread_pool_idle_timeout=getattr(
            settings, "ASGI_THREAD_POOL_IDLE_TIMEOUT", DEFAULT_THREAD_POOL_IDLE_TIMEOUT
        ),
        thread_pool_max=getattr(settings, "ASGI_THREAD_POOL_MAX", DEFAULT_THREAD_POOL_MAX),
        one_hop=getattr(settings, "ASGI_ONE_HOP", True),
        hop_queue=getattr(settings, "ASGI_HOP_QUEUE", True),
        gc_freeze=getattr(settings, "ASGI_GC_FREEZE", True),
        debug=debug,
    )


def blocking_ms(value: Any) -> float:
    """``ASGI_MIDDLEWARE_BLOCKING_MS`` checked: a finite number of milliseconds >= 0."""
    ms = non_negative(value)
    if ms is None or ms >= 1e9:
        raise StackConfigurationError(
            f"ASGI_MIDDLEWARE_BLOCKING_MS = {shown(value)} must be a number of milliseconds >= 0.",
            hint="The default is 20; 0 turns loop-blocking attribution off (a finite "
            "number below 1e9 ms).",
            id="middleware_stack.E010",
        )
    return ms


def non_negative(value: Any) -> float | None:
    """``value`` as a finite float >= 0, or None (bools, strings, NaN, inf, huge ints)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond float range
        return None
    return number if 0 <= number < float("inf") else None


def shown(value: Any) -> str:
    """``repr(value)``, shortened: an error message must not fail on a huge int."""
    try:
        text = repr(value)
    except ValueError:  # an int beyond sys.get_int_max_str_digits()
        if isinstance(value, int):
            return f"<an int of {value.bit_length()} bits>"
        raise
    return text if len(text) <= 80 else text[:77] + "..."
