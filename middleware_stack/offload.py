"""Sync calls that a layer makes before Django's request exists, on pooled threads.

Apart from :mod:`middleware_stack.threads` because it serves layers (a bearer token's
``verify``), not the Django boundary, and keeps its own small pool: such calls happen
outside any request's thread-sensitive context.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from middleware_stack.threads import ExecutorPool

T = TypeVar("T")

_OUTSIDE: dict[str, Any] = {}
#: At most this many sync calls run at once through :func:`run_sync_outside_request`.
OUTSIDE_REQUEST_MAX = 16


async def run_sync_outside_request(func: Callable[..., T], *args: Any) -> T:
    """Run ``func(*args)`` on a pooled worker thread, for sync code that a layer runs
    before Django's request exists (a bearer token's ``verify``).

    Why: outside a request, ``sync_to_async(thread_sensitive=True)`` has no request
    context and queues every call in the process on asgiref's one global thread, so
    each check waits for every other. Here each call gets a worker of its own (up to
    :data:`OUTSIDE_REQUEST_MAX` at once per event loop; more wait for one), in a copy of
    the caller's context. The call runs wholly on one thread, so the thread-local
    database connection it uses is its own; up to 4 idle workers are kept, with their
    connections (``CONN_MAX_AGE`` is the caller's to honour, e.g. by closing stale
    connections around the call), and a retired worker closes its connections first.
    """
    import contextvars
    import weakref

    pool: ExecutorPool | None = _OUTSIDE.get("pool")
    if pool is None:

        def close_connections() -> None:
            from django.db import connections

            connections.close_all()

        pool = _OUTSIDE["pool"] = ExecutorPool(
            idle_max=4, on_retire=close_connections, hop_queue=False
        )
        _OUTSIDE["limits"] = weakref.WeakKeyDictionary()
    loop = asyncio.get_running_loop()
    limit = _OUTSIDE["limits"].get(loop)
    if limit is None:
        limit = _OUTSIDE["limits"][loop] = asyncio.Semaphore(OUTSIDE_REQUEST_MAX)
    async with limit:
        executor = pool.acquire()
        try:
            context = contextvars.copy_context()
            return await loop.run_in_executor(executor, context.run, func, *args)
        finally:
            pool.release(executor)  # now, or once a cancelled call has finished
