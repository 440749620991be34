"""The Django boundary's own settings, read and checked before the stack is built.

Split out of :mod:`middleware_stack.boundary`, which keeps the per-request path: here is
only what turns ``ASGI_*`` settings (or the boundary's keyword arguments) into checked
values, each malformed one a ``StackConfigurationError`` (``E010``) that names the
setting, the value and what it takes.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from middleware_stack import threads
from middleware_stack.exceptions import StackConfigurationError
from middleware_stack.settings import StackSettings, non_negative, shown

__all__ = ["EdgeSettings", "edge_settings"]


@dataclass(frozen=True)
class EdgeSettings:
    lifespan_fallback: bool
    thread_reuse: bool
    pool_idle: int
    pool_idle_timeout: float
    pool_max: int
    hop_queue: bool
    gc_freeze: bool


def _flag(name: str, value: Any, hint: str) -> bool:
    """``value`` if it is a bool; else the E010 that names ``name`` and what it takes."""
    if not isinstance(value, bool):
        raise StackConfigurationError(
            f"{name} = {shown(value)} must be True or False.", hint=hint, id="middleware_stack.E010"
        )
    return value


def edge_settings(
    conf: StackSettings,
    thread_reuse: bool | None = None,
    pool_idle: int | None = None,
    pool_max: int | None = None,
) -> EdgeSettings:
    """The boundary's settings from ``conf``, its keyword arguments taking precedence."""
    fallback = _flag(
        "ASGI_LIFESPAN_FALLBACK",
        conf.lifespan_fallback,
        "True (the default) runs ASGI_LIFESPAN at the first request under a server that "
        "sends no lifespan (daphne); False never does.",
    )
    reuse = _flag(
        "ASGI_THREAD_REUSE",
        conf.thread_reuse if thread_reuse is None else thread_reuse,
        "True (the default) runs each request's sync code on a pooled worker thread; "
        "False starts threads per request, as Django does.",
    )
    hop_queue = _flag(
        "ASGI_HOP_QUEUE",
        conf.hop_queue,
        "True (the default) lets a one-hop request wait for a busy hop's thread while the "
        "process is busy, instead of waking a thread of its own; False gives each request "
        "in flight its own thread at once.",
    )
    gc_freeze = _flag(
        "ASGI_GC_FREEZE",
        conf.gc_freeze,
        "True (the default) moves what the process holds at its first request out of the "
        "garbage collector's full collections (gc.freeze()), which otherwise stop the "
        "event loop for tens of milliseconds; False leaves the collector as it is.",
    )
    idle = conf.thread_pool_idle if pool_idle is None else pool_idle
    if not isinstance(idle, int) or isinstance(idle, bool) or idle < 0:
        raise StackConfigurationError(
            f"ASGI_THREAD_POOL_IDLE = {shown(idle)} must be an integer >= 0.",
            hint="It bounds the idle worker threads (and so persistent DB connections) "
            "kept between requests; the default is 8.",
            id="middleware_stack.E010",
        )
    # No pool ever holds more threads than this: a larger bound means "keep them all",
    # and stays an ordinary number (describe() prints it).
    idle = min(idle, sys.maxsize)
    timeout = conf.thread_pool_idle_timeout
    grace = non_negative(timeout)
    if grace is None:
        raise StackConfigurationError(
            f"ASGI_THREAD_POOL_IDLE_TIMEOUT = {shown(timeout)} must be a number of seconds >= 0.",
            hint="Idle worker threads above ASGI_THREAD_POOL_IDLE are retired after this "
            "long without a request; the default is 5.",
            id="middleware_stack.E010",
        )
    most = conf.thread_pool_max if pool_max is None else pool_max
    if not isinstance(most, int) or isinstance(most, bool) or most < 1:
        raise StackConfigurationError(
            f"ASGI_THREAD_POOL_MAX = {shown(most)} must be an integer >= 1.",
            hint="It bounds the worker threads (and so database connections) the "
            f"process holds at once; the default is {threads.DEFAULT_MAX_THREADS}. At "
            "the bound, a request that needs a thread waits for the next one free.",
            id="middleware_stack.E010",
        )
    return EdgeSettings(
        lifespan_fallback=fallback,
        thread_reuse=reuse,
        pool_idle=idle,
        pool_idle_timeout=grace,
        pool_max=min(most, sys.maxsize),
        hop_queue=hop_queue,
        gc_freeze=gc_freeze,
    )
