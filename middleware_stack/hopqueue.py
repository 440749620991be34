"""When a one-hop request waits for a busy worker's hand-on instead of waking its own.

Why: under load, each one-hop request in flight used to take a pooled thread of its own.
Python runs one thread at a time (the GIL), so a second thread running a request's
sync code does not add throughput; it adds wake-ups and context switches (4 to 5 per
request measured, against 0.4 for one thread taking hop after hop). A one-hop
request's worker hands itself on when its hop is done (:meth:`ExecutorPool._hand_on
<middleware_stack.threads.ExecutorPool._hand_on>`), so a request that arrives while a
hop is running can wait for that worker instead: it then runs at once, on a thread
that never went to sleep.

Waiting is only right while the process is busy running Python. A hop blocked on I/O
(a slow query, an HTTP call, an async view awaiting on the loop) would hold up everyone
queued behind it, so the queue spills: a timer on the event loop, armed only while
requests wait, gives a waiting request a thread of its own (idle, or a new one under
``ASGI_THREAD_POOL_MAX``) once it has waited :data:`SPILL_AFTER` seconds while the
process used less than :data:`BUSY` of a CPU over the timer's last period (its threads
are waiting, not working: another thread can overlap their waits), or once it has
waited :data:`SPILL_PATIENCE` seconds in any case (a long CPU-bound view does not hold
short requests up for longer). A spilled thread then takes hops from the same queue
too, so the pool grows only as far as blocked hops need.

Why not spill on time alone: under CPU-bound load a hop's wall time is mostly waiting
for the GIL held by the event loop, so "no hop finished for 2 ms" happens often, and
each spill puts one more thread into the GIL's rotation (measured: 2.4 to 2.9 context
switches per request with a 2 ms stall rule, against 0.3 with one thread).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from middleware_stack.threads import ExecutorPool, Lease
    from middleware_stack.worker import WorkerExecutor

__all__ = ["BUSY", "SPILL_AFTER", "SPILL_PATIENCE", "HopQueue"]

#: Seconds a request waits for a busy worker before the timer may spill it (also the
#: timer's period while requests wait).
SPILL_AFTER = 0.002

#: The process's CPU use (CPU seconds per second, all threads) under which its threads
#: count as waiting rather than working.
BUSY = 0.75

#: Seconds a request waits for a busy worker at most, busy process or not.
SPILL_PATIENCE = 0.050


class HopQueue:
    """The pool's one-hop wait policy: whether to wait, and the spill timer."""

    __slots__ = ("_cpu", "_due", "_loop", "_wall", "after", "busy", "hopping", "patience", "pool")

    def __init__(
        self,
        pool: ExecutorPool,
        after: float = SPILL_AFTER,
        patience: float = SPILL_PATIENCE,
        busy: float = BUSY,
    ) -> None:
        self.pool = pool
        self.after = after
        self.patience = max(after, patience)
        self.busy = busy
        # Workers serving a one-hop request that has not handed them on yet.
        self.hopping: set[WorkerExecutor] = set()
        self._due: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wall = self._cpu = 0.0  # when the timer's period began, and the CPU time then

    def worth_waiting(self) -> bool:
        """A hop is running now and will hand its worker on when it is done."""
        return any(worker.busy for worker in self.hopping)

    def arm(self) -> None:
        """A request waits: make sure the timer runs (on this loop, if none is due)."""
        loop = self._loop
        if self._due is not None and loop is not None and not loop.is_closed():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a call from outside any loop: nothing to time it with
            return
        self._loop = loop
        self._wall, self._cpu = time.monotonic(), time.process_time()
        self._due = loop.call_later(self.after, self._tick)

    def due(self, lease: Lease, now: float, working: bool) -> bool:
        """Whether the waiting ``lease`` should take a thread of its own now; ``working``:
        the process was busy over the timer's last period."""
        waited = now - lease.queued_at
        return waited >= self.patience or (waited >= self.after and not working)

    def _tick(self) -> None:
        self._due = None
        now, cpu = time.monotonic(), time.process_time()
        working = cpu - self._cpu >= self.busy * (now - self._wall)
        if self.pool._spill(self, now, working):  # requests still wait: next period
            self._wall, self._cpu = now, cpu
            loop = self._loop
            if loop is not None and not loop.is_closed():
                self._due = loop.call_later(self.after, self._tick)
