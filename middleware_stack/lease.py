"""The executor one request enters ``ThreadSensitiveContext`` with: a claim on a pooled
worker thread, taken at its first call.

Split out of :mod:`middleware_stack.threads` (which re-exports it): the pool there owns
the threads and decides who gets one; this module is what one request holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from middleware_stack.threads import ExecutorPool
    from middleware_stack.worker import WorkerExecutor, _WorkItem

__all__ = ["Lease"]

T = TypeVar("T")


class Lease(Executor):
    """The executor one request (or websocket) enters ``ThreadSensitiveContext`` with.

    It holds no thread until its first call; then it takes a worker from the pool, or
    queues its calls until one is free. A request keeps its worker to the end (Django
    runs all of a request's sync code on one thread), or, on the one-hop path, until its
    last call has settled it (:meth:`ExecutorPool._hand_on`); a ``per_call`` lease (websockets)
    gives it back whenever no call of its own is queued or running, so an open
    connection holds a thread only while its sync code runs.
    """

    __slots__ = ("_loop", "_waiting", "closed", "hop", "per_call", "pool", "queued_at", "worker")

    def __init__(self, pool: ExecutorPool, per_call: bool = False, hop: bool = False) -> None:
        self.pool = pool
        self.per_call = per_call
        # The one-hop path's request: its call settles and hands the worker on, so it
        # may wait for a busy one (middleware_stack.hopqueue).
        self.hop = hop
        self.queued_at = 0.0  # when it began waiting for a worker
        self.worker: WorkerExecutor | None = None
        self._waiting: list[_WorkItem] | None = None  # calls made while waiting for a worker
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        if not self.push((future, fn, args, kwargs)) and self.per_call:
            future.add_done_callback(self._call_done)
        return future

    def push(self, item: _WorkItem) -> bool:
        """Run a call whose outcome object exists already (``submit``'s future, or the
        one-hop path's lean reply, :mod:`middleware_stack.hopcall`) on this lease's
        worker. True if it was queued until a worker is assigned (``_assign`` sends it)."""
        if self.closed:
            raise RuntimeError("cannot schedule new futures after shutdown")
        if self.per_call:
            self._loop = asyncio.get_running_loop()
        worker = self.worker
        if worker is None:
            worker = self.pool._take(self)
            if worker is None:  # at the bound: queued until a worker is released to us
                if self.pool._queue_call(self, item):
                    return True
                worker = self.worker  # assigned meanwhile
                assert worker is not None
        worker.push(item)
        return False

    def _assign(self, worker: WorkerExecutor) -> None:
        """Called under the pool's lock: the worker is ours; send it what we queued."""
        self.worker = worker
        worker.owner = self
        hops = self.pool.hops
        if hops is not None:
            if self.hop:
                hops.hopping[worker] = time.monotonic()
            else:
                hops.hopping.pop(worker, None)
        waiting, self._waiting = self._waiting, None
        for item in waiting or ():
            worker.push(item)
            if self.per_call and isinstance(item[0], Future):  # submit's (per_call: no other)
                item[0].add_done_callback(self._call_done)

    def _call_done(self, future: Future[Any]) -> None:
        loop = self._loop
        if loop is None:
            return
        # A closed loop: the lease's release never ran either; nothing to give back to.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._give_back_if_idle)

    def _give_back_if_idle(self) -> None:
        worker = self.worker
        if worker is not None and not worker.busy:
            self.worker = None
            self.pool._release_worker(worker)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.pool.release(self)
