"""Pooled single-thread executors for Django's thread-sensitive code.

Why: Django enters ``ThreadSensitiveContext()`` for every request, and asgiref then
starts a fresh single-thread executor, runs the request's sync code on it, and joins it
in yet another new thread: two OS thread starts per request, and a fresh database
connection per request because connections are thread-local.

asgiref 3.13 lets the caller own the executor (``ThreadSensitiveContext(executor=ex)``;
not shut down on exit, reused by Django's inner context). We hand each request one
executor from a pool. The pool grows with concurrency, so no request waits for a thread
another request holds. Above ``idle_max`` idle threads, the extra ones are retired once
they have been idle for ``IDLE_GRACE`` seconds, not at once: under steady concurrency
above the bound, retiring on release would start a new thread for nearly every request,
the very cost this module removes.

Safety: an executor goes back to the pool only once it has no queued or running call,
so a request cancelled in the middle of a sync call never shares its thread with the
next request while that call still runs. Tasks a request leaves running are refused by
asgiref after the context exits (RuntimeError), so they cannot use a pooled thread.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

from asgiref.sync import ThreadSensitiveContext

__all__ = ["EXECUTOR_SUPPORTED", "IDLE_GRACE", "ExecutorPool", "WorkerExecutor"]

logger = logging.getLogger("middleware_stack")

#: True when this asgiref accepts ``ThreadSensitiveContext(executor=...)`` (3.13+).
EXECUTOR_SUPPORTED = "executor" in inspect.signature(ThreadSensitiveContext.__init__).parameters

#: Seconds an idle executor above the pool's bound is kept before it is retired.
IDLE_GRACE = 5.0

T = TypeVar("T")
_names = itertools.count(1)
_WorkItem = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


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
        if self._closed:
            raise RuntimeError("cannot schedule new futures after shutdown")
        future: Future[T] = Future()
        with self._lock:
            self._pending += 1
        self._queue.put((future, fn, args, kwargs))
        return future

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            future, fn, args, kwargs = item
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


class ExecutorPool:
    """Idle :class:`WorkerExecutor` objects, most recently used first.

    LIFO keeps the warmest threads (and their database connections) in use, so with
    ``CONN_MAX_AGE`` the number of connections follows real concurrency; the coldest
    ones, at the bottom, are the ones retired when more than ``idle_max`` have stayed
    idle for ``grace`` seconds.
    """

    def __init__(
        self,
        idle_max: int,
        on_retire: Callable[[], None] | None = None,
        grace: float = IDLE_GRACE,
    ) -> None:
        self.idle_max = idle_max
        self.on_retire = on_retire
        self.grace = grace
        self._idle: list[WorkerExecutor] = []
        self._trim_loop: asyncio.AbstractEventLoop | None = None  # where a trim is due
        self.threads_started = 0
        self.live = 0
        self.closed = False  # after close(), a released executor is retired at once
        # Executors handed out and not back yet (a cancelled request's may still run a
        # sync call); lifespan shutdown waits for them through ``on_all_back``.
        self.lent = 0
        self.on_all_back: Callable[[], None] | None = None

    def acquire(self) -> WorkerExecutor:
        self.lent += 1
        try:
            return self._idle.pop()
        except IndexError:
            self.threads_started += 1
            self.live += 1
            return WorkerExecutor()

    def release(self, executor: WorkerExecutor) -> None:
        """Return ``executor`` now, or when its last running call finishes."""
        loop = asyncio.get_running_loop()
        if executor.when_idle(lambda: self._release_later(executor, loop)):
            self._put_back(executor)

    def _release_later(self, executor: WorkerExecutor, loop: asyncio.AbstractEventLoop) -> None:
        try:
            loop.call_soon_threadsafe(self._put_back, executor)
        except RuntimeError:  # the loop is closed: nobody will use this thread again
            self._retire(executor)

    def _put_back(self, executor: WorkerExecutor) -> None:
        self.lent -= 1
        if not self.lent and self.on_all_back is not None:
            self.on_all_back()
        if self.closed:  # busy when the pool closed: nobody will take it again
            self._retire(executor)
            return
        executor.idle_since = time.monotonic()
        self._idle.append(executor)
        if len(self._idle) > self.idle_max:
            self._schedule_trim(self.grace)

    def _schedule_trim(self, delay: float) -> None:
        due = self._trim_loop
        if due is not None and not due.is_closed():
            return  # one pending trim per pool is enough
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._trim_loop = loop
        loop.call_later(delay, self._trim)

    def _trim(self) -> None:
        """Retire the coldest idle executors above the bound that outstayed the grace."""
        self._trim_loop = None
        idle = self._idle
        deadline = time.monotonic() - self.grace
        while len(idle) > self.idle_max and idle[0].idle_since <= deadline:
            self._retire(idle.pop(0))
        if len(idle) > self.idle_max:
            self._schedule_trim(max(0.0, idle[0].idle_since - deadline))

    def _retire(self, executor: WorkerExecutor) -> Future[None] | None:
        self.live -= 1
        done = executor.submit(self.on_retire) if self.on_retire is not None else None
        executor.shutdown(wait=False)
        return done

    @property
    def idle(self) -> int:
        return len(self._idle)

    def close(self) -> list[Future[None]]:
        """Retire every idle executor (at lifespan shutdown); a busy one is retired when
        its request releases it.

        Returns the futures of the idle ones' ``on_retire`` calls (closing their
        database connections on their own threads), so that shutdown can wait for them
        before the process exits and its daemon threads stop mid-call.
        """
        self.closed = True
        pending = []
        while self._idle:
            done = self._retire(self._idle.pop())
            if done is not None:
                pending.append(done)
        return pending
