"""Pooled single-thread executors for Django's thread-sensitive code.

Why: Django enters ``ThreadSensitiveContext()`` for every request, and asgiref then
starts a fresh single-thread executor, runs the request's sync code on it, and joins it
in yet another new thread: two OS thread starts per request, and a fresh database
connection per request because connections are thread-local.

asgiref 3.13 lets the caller own the executor (``ThreadSensitiveContext(executor=ex)``;
not shut down on exit, reused by Django's inner context). Each request gets a
:class:`Lease`: an executor that takes a worker thread from the pool at its first call,
not before, so a request still sending its body (or a websocket waiting for a message)
holds no thread. At most ``max_threads`` workers exist; a lease that finds none free
waits, first come first served, for the next one released, without blocking the event
loop (its calls are queued). Above ``idle_max`` idle threads, the extra ones are retired
once they have been idle for ``IDLE_GRACE`` seconds, not at once: under steady
concurrency above the bound, retiring on release would start a new thread for nearly
every request, the very cost this module removes.

Safety: a worker goes back to the pool only once it has no queued or running call, so
a request cancelled in the middle of a sync call never shares its thread with the next
request while that call still runs. On release, ``on_release`` is queued on the worker
ahead of anything a later request sends it: the boundary resets there the database
connections a request left in a transaction (see :mod:`middleware_stack.dbstate`).
A request whose last sync call already ran it there (``worker.settle_here``, the one-hop
path) and made no call since is released without it: no extra wake-up of the thread.
Tasks a request leaves running are refused by asgiref after the context exits
(RuntimeError), so they cannot use a pooled thread.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future

from asgiref.sync import ThreadSensitiveContext

from middleware_stack.hopqueue import HopQueue
from middleware_stack.lease import Lease
from middleware_stack.worker import WorkerExecutor, _WorkItem

__all__ = [
    "DEFAULT_MAX_THREADS",
    "EXECUTOR_SUPPORTED",
    "IDLE_GRACE",
    "ExecutorPool",
    "Lease",
    "WorkerExecutor",
]


logger = logging.getLogger("middleware_stack")

#: True when this asgiref accepts ``ThreadSensitiveContext(executor=...)`` (3.13+).
EXECUTOR_SUPPORTED = "executor" in inspect.signature(ThreadSensitiveContext.__init__).parameters

#: Seconds an idle executor above the pool's bound is kept before it is retired.
IDLE_GRACE = 5.0

#: Worker threads a pool may hold at once (``ASGI_THREAD_POOL_MAX``'s default): the
#: size of anyio's default thread limiter (Starlette's ``run_in_threadpool``), and with
#: ``CONN_MAX_AGE`` two such processes stay under PostgreSQL's default 100 connections.
DEFAULT_MAX_THREADS = 40


class ExecutorPool:
    """Idle :class:`WorkerExecutor` objects, most recently used first, at most
    ``max_threads`` alive, handed out through :class:`Lease` objects.

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
        *,
        max_threads: int = DEFAULT_MAX_THREADS,
        on_release: Callable[[], None] | None = None,
        hop_queue: bool = True,
    ) -> None:
        self.idle_max = idle_max
        self.max_threads = max(1, max_threads)
        self.on_retire = on_retire
        self.on_release = on_release
        self.grace = grace
        self._idle: list[WorkerExecutor] = []
        self._waiters: deque[Lease] = deque()
        self._lock = threading.Lock()  # leases may come from several event loops' threads
        self._trim_loop: asyncio.AbstractEventLoop | None = None  # where a trim is due
        self.threads_started = 0
        self.live = 0
        # Leases that waited for a worker: every thread busy at the bound, or (one-hop
        # requests under load) a busy hop's thread, see ``hops``.
        self.waited = 0
        self.spilled = 0  # waiting leases the hop queue gave a thread of their own
        # One-hop requests wait for a busy hop's worker rather than wake their own.
        self.hops: HopQueue | None = HopQueue(self) if hop_queue else None
        self.closed = False  # after close(), a released executor is retired at once
        # Called on the loop whenever a worker comes back and none is out any more:
        # lifespan shutdown waits for that (see ``lent``).
        self.on_all_back: Callable[[], None] | None = None

    def acquire(self, *, per_call: bool = False, hop: bool = False) -> Lease:
        """A lease for one request (cheap: no thread until its first call); ``hop``: the
        one-hop path's, which may wait for a busy hop's worker (see ``hops``)."""
        return Lease(self, per_call, hop)

    @property
    def lent(self) -> int:
        """Workers out of the pool: running a lease's calls, or finishing a call of a
        cancelled request whose lease has ended."""
        return self.live - len(self._idle)

    def release(self, lease: Lease) -> None:
        """End ``lease``: its worker returns now, or when its last running call finishes."""
        if lease.closed:
            return
        with self._lock:
            lease.closed = True
            worker, lease.worker = lease.worker, None
            if worker is not None and self.hops is not None:
                self.hops.hopping.pop(worker, None)
            if worker is None and lease._waiting is not None:
                self._waiters.remove(lease)
                waiting, lease._waiting = lease._waiting, None
                for future, *_ in waiting:
                    if future is not None:
                        future.cancel()
        if worker is not None:
            self._release_worker(worker)

    def _take(self, lease: Lease) -> WorkerExecutor | None:
        with self._lock:
            if lease._waiting is not None:  # already waiting: keep its calls in order
                return None
            hops = self.hops
            if lease.hop and hops is not None and hops.worth_waiting():
                return None  # the next hop's worker to hand itself on is ours
            if self._idle:
                worker = self._idle.pop()
                lease._assign(worker)
                return worker
            if self.live >= self.max_threads:
                return None
            self.threads_started += 1
            self.live += 1
        worker = self._new_worker()  # a thread start: not under the lock
        with self._lock:
            lease._assign(worker)
        return worker

    def _new_worker(self) -> WorkerExecutor:
        worker = WorkerExecutor()
        worker.on_release = self.on_release
        worker.hand_on = self._hand_on
        return worker

    def _hand_on(self, worker: WorkerExecutor) -> None:
        """On ``worker``'s thread, its request's last call done and settled: hand it
        straight to the first request waiting at the bound, whose calls then run next
        without the thread going to sleep (and without a round trip through the loop,
        which would release it only after the response is sent); with nobody waiting,
        put it back among the idle ones now."""
        with self._lock:
            lease = worker.owner
            if lease is None or lease.worker is not worker or lease.closed or lease.per_call:
                return
            hops = self.hops
            if hops is not None:
                hops.hopping.pop(worker, None)
            if self._waiters and (hops is None or not hops.others_take(worker, self._waiters[0])):
                lease.worker = None  # it ends without a worker; a late call takes another
                self._waiters.popleft()._assign(worker)
            elif not self.closed and len(self._idle) < self.idle_max:
                # Back now, not once the response is sent: the next request takes this
                # warm thread. (At the idle bound, or closing, the release on the loop
                # does it, and schedules the trim or the retirement.)
                lease.worker = None
                worker.owner = None
                worker.idle_since = time.monotonic()
                self._idle.append(worker)

    def _queue_call(self, lease: Lease, item: _WorkItem) -> bool:
        """Queue a call of a lease waiting for a worker; False if one came meanwhile."""
        with self._lock:
            if lease.worker is not None:
                return False
            if lease._waiting is None:
                lease._waiting = []
                lease.queued_at = time.monotonic()
                self._waiters.append(lease)
                self.waited += 1
                if lease.hop and self.hops is not None:
                    self.hops.arm()  # at the bound alone a timer could not spill it
            lease._waiting.append(item)
            return True

    def _spill(self, hops: HopQueue, now: float, keep: bool) -> bool:
        """The hop queue's timer: give the leases that waited too long a thread of their
        own (idle, or new under the bound), oldest first. True if leases still wait."""
        while True:
            with self._lock:
                if not self._waiters or not hops.due(self._waiters[0], now, keep):
                    return bool(self._waiters)
                if self._idle:
                    self.spilled += 1
                    self._waiters.popleft()._assign(self._idle.pop())
                    continue
                if self.live >= self.max_threads:  # at the bound: wait for a release
                    return True
                self.threads_started += 1
                self.live += 1
            try:
                worker = self._new_worker()  # a thread start: not under the lock
            except RuntimeError:  # "can't start new thread": wait for a hand-on instead
                logger.exception("middleware_stack: could not start a worker thread")
                with self._lock:
                    self.threads_started -= 1
                    self.live -= 1
                return True
            with self._lock:
                if self._waiters and hops.due(self._waiters[0], now, keep):
                    self.spilled += 1
                    self._waiters.popleft()._assign(worker)
                    continue
                worker.idle_since = time.monotonic()
                self._idle.append(worker)
                return bool(self._waiters)

    def _release_worker(self, worker: WorkerExecutor) -> None:
        if self.on_release is not None and not worker.settled():
            worker.after(self.on_release)  # before any later request's call on it
        loop = asyncio.get_running_loop()
        if worker.when_idle(lambda: self._release_later(worker, loop)):
            self._put_back(worker)

    def _release_later(self, executor: WorkerExecutor, loop: asyncio.AbstractEventLoop) -> None:
        try:
            loop.call_soon_threadsafe(self._put_back, executor)
        except RuntimeError:  # the loop is closed: nobody will use this thread again
            self._retire(executor)

    def _put_back(self, executor: WorkerExecutor) -> None:
        with self._lock:
            hops = self.hops
            if hops is not None:
                hops.hopping.pop(executor, None)
            if self._waiters:  # a lease waits (at the bound, or for a hop): straight to it
                self._waiters.popleft()._assign(executor)
                return
            closed = self.closed
        if closed:  # busy when the pool closed, and nobody waits: retire it
            self._retire(executor)
            self._note_back()
            return
        with self._lock:
            executor.idle_since = time.monotonic()
            self._idle.append(executor)
            trim = len(self._idle) > self.idle_max
        self._note_back()
        if trim:
            self._schedule_trim(self.grace)

    def _note_back(self) -> None:
        if self.on_all_back is not None and not self.lent:
            self.on_all_back()

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
        retire = []
        with self._lock:
            while len(idle) > self.idle_max and idle[0].idle_since <= deadline:
                retire.append(idle.pop(0))
            again = len(idle) > self.idle_max
        for executor in retire:
            self._retire(executor)
        if again:
            self._schedule_trim(max(0.0, idle[0].idle_since - deadline))

    def _retire(self, executor: WorkerExecutor) -> Future[None] | None:
        with self._lock:
            self.live -= 1
        done = executor.submit(self.on_retire) if self.on_retire is not None else None
        executor.shutdown(wait=False)
        return done

    @property
    def idle(self) -> int:
        return len(self._idle)

    @property
    def waiting(self) -> int:
        """Leases waiting for a worker: at the bound, or for a busy hop's."""
        return len(self._waiters)

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
