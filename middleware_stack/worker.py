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
from typing import Any, TypeVar

__all__ = ["WorkerExecutor"]

logger = logging.getLogger("middleware_stack")

T = TypeVar("T")
_names = itertools.count(1)
_WorkItem = tuple[Future[Any] | None, Callable[..., Any], tuple[Any, ...], dict[str, Any]]


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
                callback = self._on_idle if self._pending == 0 else None
                if callback is not None:
                    self._on_idle = None
            if ran:
                if error is None:
                    future.set_result(result)
                else:
                    future.set_exception(error)
            del item, future, fn, args, kwargs, result, error  # drop references before idling
            if callback is not None:
                callback()

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
