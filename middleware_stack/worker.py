"""One worker thread that runs calls in order and knows when it is idle.

Split out of :mod:`middleware_stack.threads` (which re-exports it): the pool there hands
these executors to requests; this module is only the thread and its queue.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, Protocol, TypeVar

__all__ = ["Outcome", "WorkerExecutor", "settle_here"]

logger = logging.getLogger("middleware_stack")

T = TypeVar("T")
_names = itertools.count(1)


class Outcome(Protocol):
    """Where a queued call's result goes: a ``concurrent.futures.Future`` (``submit``), or
    the one-hop path's lean reply to the event loop (:mod:`middleware_stack.hopcall`)."""

    def set_running_or_notify_cancel(self) -> bool: ...
    def set_result(self, result: Any, /) -> None: ...
    def set_exception(self, exception: BaseException | None, /) -> None: ...
    def cancel(self) -> bool: ...


_WorkItem = tuple[Outcome | None, Callable[..., Any], tuple[Any, ...], dict[str, Any]]
_current = threading.local()  # .worker: the WorkerExecutor whose thread this is


def settle_here() -> None:
    """In a request's last sync call on a pooled worker: run the pool's release hook
    (``on_release``) now, on this thread, instead of in a queued call at release.

    Why: queued at release, the hook wakes the worker once more per request, a thread
    switch that costs about as much as the hook's work; the one-hop path, whose hop is
    usually the request's only call, settles in it. Safe: the worker is "settled" only
    while no call ran on it after this one (see :meth:`WorkerExecutor.settled`); if
    one did, or the hook raised, the pool queues the hook at release as before.
    Anywhere else (no pool, another executor) this does nothing.
    """
    worker: WorkerExecutor | None = getattr(_current, "worker", None)
    if worker is None or worker.on_release is None:
        return
    try:
        worker.on_release()
    except Exception:
        logger.exception("middleware_stack: worker housekeeping failed")
        return
    with worker._lock:
        worker._settled_at = worker._calls + 1  # this call, once it is done


class WorkerExecutor(Executor):
    """One worker thread that runs calls in order, and knows when it is idle.

    ``ThreadPoolExecutor(max_workers=1)`` would do the work, but cannot say whether a
    call is still queued or running; the pool needs that to never hand a busy thread to
    a new request.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_WorkItem | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pending = 0
        self.idle_since = 0.0  # monotonic time it last went back to the pool
        self._on_idle: Callable[[], None] | None = None
        self._closed = False
        # The pool's release hook (settle_here runs it in a call); calls finished so
        # far; the count at which the last settle_here's call finished.
        self.on_release: Callable[[], None] | None = None
        self._calls = 0
        self._settled_at = -1
        # Set by the pool: called on this thread when a call settled its request and
        # nothing is queued, to hand the thread straight on to a request waiting for one.
        self.hand_on: Callable[[WorkerExecutor], None] | None = None
        self.owner: Any = None  # the lease this worker serves (the pool's bookkeeping)
        self.thread = threading.Thread(
            target=self._work, name=f"middleware_stack-worker-{next(_names)}", daemon=True
        )
        self.thread.start()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        self.push((future, fn, args, kwargs))
        return future

    def push(self, item: _WorkItem) -> None:
        """Queue a call whose future already exists (a lease's calls made while it waited)."""
        if self._closed:
            raise RuntimeError("cannot schedule new futures after shutdown")
        with self._lock:
            self._pending += 1
        self._queue.put(item)

    def after(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the worker after the calls queued so far, before later ones.

        Housekeeping: it does not count as a call (the worker is idle while only this is
        queued), and an exception from it is logged, not raised to anyone.
        """
        self._queue.put((None, fn, (), {}))

    def _work(self) -> None:
        _current.worker = self
        while (item := self._queue.get()) is not None:
            future, fn, args, kwargs = item
            if future is None:
                try:
                    fn()
                except Exception:
                    logger.exception("middleware_stack: worker housekeeping failed")
                del item, fn
                continue
            result: Any = None
            error: BaseException | None = None
            ran = future.set_running_or_notify_cancel()
            if ran:
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    error = exc
            # Idle before the future resolves: the awaiting request may end (and release
            # this executor) the moment it does, and must then find it idle.
            with self._lock:
                self._pending -= 1
                self._calls += 1
                callback = self._on_idle if self._pending == 0 else None
                if callback is not None:
                    self._on_idle = None
                settled = self._pending == 0 and self._calls == self._settled_at
                hand_on = self.hand_on if settled and callback is None else None
            if hand_on is not None:  # before the result: the next request's call is queued now
                try:
                    hand_on(self)
                except Exception:  # the pool's bookkeeping: the release does it instead
                    logger.exception("middleware_stack: worker housekeeping failed")
            if ran:
                if error is None:
                    future.set_result(result)
                else:
                    future.set_exception(error)
            del item, future, fn, args, kwargs, result, error  # drop references before idling
            if callback is not None:
                callback()

    def settled(self) -> bool:
        """True when idle and its last call ran :func:`settle_here` (nothing ran since)."""
        with self._lock:
            return self._pending == 0 and self._calls == self._settled_at

    @property
    def busy(self) -> bool:
        return self._pending > 0

    def when_idle(self, callback: Callable[[], None]) -> bool:
        """True if idle now; otherwise ``callback`` runs (on the worker) once it is."""
        with self._lock:
            if self._pending == 0:
                return True
            self._on_idle = callback
            return False

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._closed = True
        self._queue.put(None)
        if wait and threading.current_thread() is not self.thread:
            self.thread.join()
