"""When a one-hop request waits for a busy worker's hand-on instead of waking its own.

Why: under load, each one-hop request in flight used to take a pooled thread of its own.
Python runs one thread at a time (the GIL), so a second thread running a request's
sync code does not add throughput; it adds wake-ups and context switches (4 to 5 per
request measured, against 0.4 for one thread taking hop after hop). A one-hop
request's worker hands itself on when its hop is done (:meth:`ExecutorPool._hand_on
<middleware_stack.threads.ExecutorPool._hand_on>`), so a request that arrives while a
hop is running can wait for that worker instead: it then runs at once, on a thread
that never went to sleep.

Waiting is only right while the hop waited for will end soon and the process is busy
running Python: then another thread could only take turns with the busy one. So a
request waits only when a hop that started less than :data:`FRESH` ago is running, and
the process used at least :data:`BUSY` of a CPU over its last :data:`WINDOW` (one CPU
clock read per window, not per request). Otherwise its threads are waiting (on a slow
query, an HTTP call, an async view awaiting on the loop) or a view runs long, and the
request takes a thread of its own at once, as without the queue: I/O-bound projects pay
nothing.

A request already waiting when that stops being true is spilled by a timer on the
event loop, armed only while requests wait (every :data:`SPILL_AFTER`): it gets a thread
of its own (idle, or a new one under ``ASGI_THREAD_POOL_MAX``), and after
:data:`SPILL_PATIENCE` in any case. After a spill, a thread whose hop ends leaves the
waiting requests to another recent hop's thread (:meth:`HopQueue.others_take`), so the
threads taking turns shrink back to one instead of alternating while requests wait.

Why not spill on time alone: under CPU-bound load a hop's wall time is mostly waiting
for the GIL held by the event loop, so "no hop finished for 2 ms" happens often, and
each spill puts one more thread into the GIL's rotation (measured in-process with 16
clients: 2.4 to 2.9 thread switches per request with a 2 ms stall rule, 0.5 to 1.0 with
these rules, 0.3 to 0.5 at ``ASGI_THREAD_POOL_MAX = 1``, 4.1 to 4.4 without the queue).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from middleware_stack.threads import ExecutorPool, Lease
    from middleware_stack.worker import WorkerExecutor

__all__ = ["BUSY", "FRESH", "SPILL_AFTER", "SPILL_PATIENCE", "WINDOW", "HopQueue"]

#: Seconds a request waits for a busy worker before the timer may spill it (also the
#: timer's period while requests wait).
SPILL_AFTER = 0.002

#: The process's CPU use (CPU seconds per second, all threads) under which its threads
#: count as waiting rather than working. Under CPU-bound load it measures 0.9 to 1.05,
#: with dips to 0.45 to 0.7 in one period of a few hundred (thread hand-offs); a process
#: whose hops wait on I/O measures far less.
BUSY = 0.5

#: Seconds a hop may have run and still count as ending soon, so worth waiting for: two
#: of Python's GIL switch intervals (5 ms), since under load a short hop's wall time is
#: mostly waiting for the GIL. (2 ms gave twice the thread switches per request.)
FRESH = 0.010

#: Seconds over which that use is measured: long enough to smooth the dips, short
#: enough that a process whose hops turn to waiting is seen so within a few periods.
WINDOW = 0.008

#: Seconds a request waits for a busy worker at most, busy process or not.
SPILL_PATIENCE = 0.020


class HopQueue:
    """The pool's one-hop wait policy: whether to wait, and the spill timer."""

    __slots__ = (
        "_cpu", "_due", "_loop", "_wall", "after", "busy", "fresh", "hopping", "patience", "pool", "window", "working",
    )  # fmt: skip

    def __init__(
        self,
        pool: ExecutorPool,
        after: float = SPILL_AFTER,
        patience: float = SPILL_PATIENCE,
        busy: float = BUSY,
        window: float = WINDOW,
        fresh: float = FRESH,
    ) -> None:
        self.pool = pool
        self.after = after
        self.patience = max(after, patience)
        self.busy = busy
        self.window = window
        self.fresh = fresh  # a hop running for less than this is expected to end soon
        # Workers serving a one-hop request that has not handed them on yet, and since when.
        self.hopping: dict[WorkerExecutor, float] = {}
        self._due: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # The process's CPU use over its last measured period (at least ``after`` long).
        self.working = False
        self._wall, self._cpu = time.monotonic(), time.process_time()

    def worth_waiting(self) -> bool:
        """A hop started lately is running (it will hand its worker on soon), and the
        process is busy (an idle one has its hops blocked: better another thread now)."""
        now = time.monotonic()
        return self._soon(None, now) and self.measure(now)

    def others_take(self, worker: WorkerExecutor, head: Lease) -> bool:
        """On ``worker``'s thread, its hop done: leave the waiting requests (``head``
        first) to another hop started lately, the process being busy and the queue
        moving (its head has waited less than ``fresh``). So the threads taking turns at
        the hops shrink back to one after a spill, instead of alternating for as long as
        requests wait (each alternation is a thread switch); a queue that one thread
        does not drain (hops that also wait on I/O) keeps the threads it has."""
        now = time.monotonic()
        return self.working and now - head.queued_at < self.fresh and self._soon(worker, now)

    def _soon(self, besides: WorkerExecutor | None, now: float) -> bool:
        # A hop running longer than ``fresh`` may be blocked: not worth waiting for.
        if not self.hopping:  # the common case of a process with its hops handed on
            return False
        fresh = self.fresh
        return any(
            worker.busy and now - since < fresh and worker is not besides
            for worker, since in list(self.hopping.items())
        )

    def measure(self, now: float) -> bool:
        """Whether the process was working over its last window (measured again once the
        window is ``window`` old: one CPU clock read per window, not per request)."""
        if now - self._wall >= self.window:
            cpu = time.process_time()
            self.working = cpu - self._cpu >= self.busy * (now - self._wall)
            self._wall, self._cpu = now, cpu
        return self.working

    def arm(self) -> None:
        """A request waits: make sure the timer runs (on this loop, if none is due).
        Called under the pool's lock."""
        loop = self._loop
        if self._due is not None and loop is not None and not loop.is_closed():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a call from outside any loop: nothing to time it with
            return
        self._loop = loop
        self._due = loop.call_later(self.after, self._tick)

    def due(self, lease: Lease, now: float, keep: bool) -> bool:
        """Whether the waiting ``lease`` should take a thread of its own now; ``keep``:
        waiting was still worth it at this period (see :meth:`_tick`)."""
        waited = now - lease.queued_at
        return waited >= self.patience or (waited >= self.after and not keep)

    def _tick(self) -> None:
        now = time.monotonic()
        # Worth waiting still: the process is busy and a hop started lately runs. Not so
        # once the hops waited for run long (blocked, or a slow view) or the process idles.
        keep = self.measure(now) and self._soon(None, now)
        pool = self.pool
        pool._spill(self, now, keep)
        with pool._lock:  # as _queue_call arms: no waiter is ever left without a timer
            self._due = None
            if any(lease.hop for lease in pool._waiters):
                self.arm()  # on this loop, the one running now
