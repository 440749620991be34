"""The one-hop path's hand-over: one thread-sensitive sync call on a request's lease.

Why not ``sync_to_async``: asgiref's ``SyncToAsync`` is general. Per call it looks up
which executor to use, goes through ``loop.run_in_executor`` (a
``concurrent.futures.Future``, whose every read takes a ``Condition``, chained to an
asyncio future by ``wrap_future``) and wraps that in ``asyncio.shield``. On the one-hop
path that is a quarter of the event loop's time per request; here the executor is
known (the request's lease), and the worker resolves an asyncio future directly with
one ``call_soon_threadsafe``.

What is asgiref's and is kept, so code inside the hop cannot tell the difference:

- the call runs in a copy of the caller's context, and the context variables it sets
  are copied back after it (``asgiref.sync._restore_context``, which also re-homes
  ``asgiref.local.Local`` storage where the installed asgiref does);
- on the worker, ``SyncToAsync.threadlocal`` names this loop (and this process) as the
  main event loop, so an ``async_to_sync`` inside it (an async view in the sync chain)
  runs its coroutine back on this loop, and lists that coroutine's task in the call's
  task context;
- cancellation: that task is cancelled first, and if it absorbs the cancel, the call's
  result is awaited and returned; otherwise a call not yet started never starts, and a
  running one runs to its end with its result dropped (sync code cannot be stopped).

Where it does not apply (:func:`usable`), the caller uses ``SyncToAsync``: under a sync
caller's ``async_to_sync`` (Django's test client), whose thread must run thread-sensitive
code, and on an asgiref without ``_restore_context``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import asgiref.sync
from asgiref.sync import AsyncToSync, SyncToAsync

if TYPE_CHECKING:
    from middleware_stack.lease import Lease

__all__ = ["call", "usable"]

T = TypeVar("T")

# asgiref's own copy-back of context variables (in every release we support); a release
# without it gets SyncToAsync instead (usable() is False).
_restore: Callable[[contextvars.Context], None] | None = getattr(
    asgiref.sync, "_restore_context", None
)


def _restores_in_thread() -> bool:
    """Whether the installed ``SyncToAsync`` also restores the context on the worker,
    inside the copy, to re-home ``Local`` storage to the worker thread (asgiref 3.12.1
    and later do, in a nested ``run_child``; earlier releases do not)."""
    codes = [SyncToAsync.__call__.__code__]
    while codes:
        code = codes.pop()
        if code.co_name == "run_child":
            return True
        codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return False


_RESTORE_IN_THREAD = _restores_in_thread()


def usable() -> bool:
    """True when a call may skip ``SyncToAsync`` (see the module)."""
    return _restore is not None and getattr(AsyncToSync.executors, "current", None) is None


class _Reply:
    """The worker's side of one call (an ``Outcome``): it resolves ``future`` on the loop."""

    __slots__ = ("delivered", "dropped", "future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()
        self.dropped = False  # the caller gave up before the call started: skip it
        self.delivered = False

    def set_running_or_notify_cancel(self) -> bool:
        return not self.dropped

    def set_result(self, result: Any, /) -> None:
        self._post(result, None)

    def set_exception(self, exception: BaseException | None, /) -> None:
        self._post(None, exception)

    def cancel(self) -> bool:
        """The lease ended with this call still queued (on the loop's thread)."""
        self.dropped = True
        self.future.cancel()
        return True

    def _post(self, result: Any, error: BaseException | None) -> None:
        # A closed loop (the server is gone) has nobody left to tell.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._deliver, result, error)

    def _deliver(self, result: Any, error: BaseException | None) -> None:
        self.delivered = True
        future = self.future
        if future.done():  # cancelled: the caller no longer waits for it
            return
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)


def _in_thread(
    loop: asyncio.AbstractEventLoop,
    tasks: list[asyncio.Task[Any]],
    context: contextvars.Context,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
) -> Any:
    local = SyncToAsync.threadlocal
    local.main_event_loop = loop
    local.main_event_loop_pid = os.getpid()
    local.task_context = tasks
    return context.run(_in_context, context, fn, args)


def _in_context(context: contextvars.Context, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    if _RESTORE_IN_THREAD:
        assert _restore is not None
        _restore(context)
    return fn(*args)


async def call(lease: Lease, fn: Callable[..., T], *args: Any) -> T:
    """``await sync_to_async(fn, thread_sensitive=True)(*args)`` inside the request's
    ``ThreadSensitiveContext(executor=lease)``, without asgiref's generic machinery.
    Only when :func:`usable`."""
    assert _restore is not None
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    tasks: list[asyncio.Task[Any]] = []
    reply = _Reply(loop)
    lease.push((reply, _in_thread, (loop, tasks, context, fn, args), {}))
    try:
        try:
            result: T = await reply.future
        except asyncio.CancelledError:
            if reply.delivered:  # it had ended: the cancel stands, the result is dropped
                raise
            if tasks:  # an async view of the call's, running on this loop: stop it first
                task = tasks[0]
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
                else:  # it absorbed the cancel: the call goes on, and so do we
                    if reply.delivered:  # (asgiref too raises when it ended meanwhile)
                        raise
                    reply.future = loop.create_future()
                    result = await reply.future
                    return result
            reply.dropped = True  # not started yet: it never starts
            raise
        return result
    finally:
        _restore(context)
