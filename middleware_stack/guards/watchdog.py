"""The loop threads' step state, and the watchdog thread that watches them.

:mod:`middleware_stack.guards.blocking` times a loop thread's steps; this module keeps
what a step's report needs from outside that thread:

* **a stack sample.** The watchdog wakes every few milliseconds; when a loop thread has
  been inside the same step for longer than the interval, it records that thread's
  Python stack (``sys._current_frames``) with the frame then current. A layer reported
  over the threshold gets the sample taken while its code ran, which shows the
  ``time.sleep(...)`` or the slow call.
* **the time the thread waited for a CPU.** On a loaded host (two test runs on two
  cores, a noisy neighbour) the kernel can leave a runnable loop thread off the CPU for
  tens of milliseconds in the middle of a layer's code. That is not the layer holding
  the loop, and blaming it would be a false report. Linux counts the wait per thread
  (``/proc/self/task/<tid>/schedstat``, second field: nanoseconds spent runnable on a
  run queue). The watchdog reads it at every tick, and the loop thread once more when it
  reports, so a long step's wait is known to within one tick before the step began.
  Time blocked in a call (``time.sleep``, a socket read) is not a wait for a CPU: it
  stays the layer's. Where the file does not exist (not Linux), nothing is taken off.
* **the time the thread spent collecting garbage.** A collection stops the thread that
  allocated when a generation's count ran over, which is chance, and a full one walks
  the whole process's heap (Django's start-up objects, a test runner's), taking tens of
  milliseconds that no layer's code asked for. A ``gc.callbacks`` hook, installed with
  the watchdog, keeps each loop thread's recent pauses; the step's report takes them off
  the stretches they fell in.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from collections import deque
from types import FrameType
from typing import Any

__all__ = [
    "ThreadState",
    "cpu_wait",
    "format_stack",
    "gc_pauses",
    "sampled_stack",
    "start",
    "thread_state",
]

perf_counter = time.perf_counter

#: A stack sample: (perf_counter time, owner frame, [(file, line, function), ...]).
Sample = tuple[float, Any, list[tuple[str, int, str]]]


class ThreadState:
    """A loop thread's step bookkeeping, read by the watchdog without locks."""

    __slots__ = (
        "clock",
        "cur",
        "gc_begun",
        "ident",
        "kind",
        "log",
        "loop",
        "native",
        "pauses",
        "samples",
        "start",
    )

    def __init__(self) -> None:
        self.cur: Any = None  # the frame whose code runs now; None outside guarded steps
        self.kind: Any = None  # which of its code: "call", "send", "receive" or "task"
        self.log: list[Any] | None = None  # hand-overs of the driven step, else None
        self.start = 0.0  # perf_counter at the start of the driven step
        self.loop: Any = None
        self.ident = threading.get_ident()
        self.samples: deque[Sample] = deque(maxlen=32)
        self.native = threading.get_native_id()
        self.gc_begun = 0.0  # perf_counter when a collection on this thread began
        #: (start, end) of this thread's recent collections that took _MIN_PAUSE or more
        self.pauses: deque[tuple[float, float]] = deque(maxlen=64)
        # Only while blocking is attributed (the watchdog runs and closes a dead
        # thread's clock); a thread met before the watchdog started gets one at a tick.
        self.clock = WaitClock.of(self.native) if _watchdog is not None else None


_local = threading.local()
_states: dict[int, ThreadState] = {}  # by native thread id


def thread_state() -> ThreadState:
    try:
        return _local.state  # type: ignore[no-any-return]
    except AttributeError:
        state = _local.state = ThreadState()
        gone = _states.get(state.native)  # a thread that exited had this id
        if gone is not None and gone.clock is not None:
            gone.clock.close()
        _states[state.native] = state
        return state


# -- waiting for a CPU -----------------------------------------------------------------


class WaitClock:
    """One thread's count of the time it spent runnable but off the CPU, read by any
    thread: the kernel's count now, and the counts the watchdog took at its ticks."""

    __slots__ = ("fd", "ticks")

    def __init__(self, fd: int) -> None:
        self.fd: int | None = fd
        #: (perf_counter time, seconds waited since the thread started)
        self.ticks: deque[tuple[float, float]] = deque(maxlen=256)

    @classmethod
    def of(cls, native_id: int) -> WaitClock | None:
        """The clock of a thread of this process; None where the kernel keeps none."""
        try:
            fd = os.open(f"/proc/self/task/{native_id}/schedstat", os.O_RDONLY)
        except OSError:
            return None
        clock = cls(fd)
        if clock.read() is None:
            return None
        clock.tick(perf_counter())  # the first step's anchor: it starts right after this
        return clock

    def read(self) -> float | None:
        fd = self.fd
        if fd is None:
            return None
        try:
            return int(os.pread(fd, 64, 0).split()[1]) / 1e9
        except (OSError, IndexError, ValueError):  # the thread has exited
            self.close()
            return None

    def close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)

    def tick(self, now: float) -> None:
        waited = self.read()
        if waited is not None:
            self.ticks.append((now, waited))

    def since(self, start: float) -> float:
        """The wait since the last tick at or before ``start``: an over-estimate by the
        wait between that tick and ``start``, never an under-estimate."""
        now = self.read()
        if now is None:
            return 0.0
        before = None
        for when, waited in reversed(self.ticks):
            if when <= start:
                before = waited
                break
        if before is None:  # no tick before the step is left: the oldest inside it
            if not self.ticks:
                return 0.0
            before = self.ticks[0][1]
        return max(0.0, now - before)


def cpu_wait(state: ThreadState, start: float, end: float) -> float:
    """Seconds of the step from ``start`` to ``end`` (now, or just before) that the loop
    thread spent runnable but off the CPU. Called on that thread, only for a step
    already over the threshold.

    Not counted: the time it sleeps waiting for the GIL while another thread that holds
    or was just handed the GIL waits for a CPU (a Django worker, or the watchdog itself
    at its tick). Those waits overlap the loop thread's own work on another core too, so
    they cannot be told apart from it and stay the layer's.
    """
    clock = state.clock
    if clock is None:
        return 0.0
    return min(clock.since(start), end - start)


# -- collecting garbage -----------------------------------------------------------------

#: Shorter collections are not kept: a young one takes tens of microseconds, far below
#: any threshold, and keeping none of them bounds the hook's work.
_MIN_PAUSE = 0.0002


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    """``gc.callbacks`` hook: note the collections of threads that run guarded steps."""
    state: ThreadState | None = getattr(_local, "state", None)
    if state is None:
        return
    now = perf_counter()
    if phase == "start":
        state.gc_begun = now
    elif state.gc_begun:
        if now - state.gc_begun >= _MIN_PAUSE:
            state.pauses.append((state.gc_begun, now))
        state.gc_begun = 0.0


def gc_pauses(state: ThreadState, start: float, end: float) -> list[tuple[float, float]]:
    """The thread's collections that overlap ``start``..``end``."""
    return [(a, b) for a, b in state.pauses if a < end and b > start]


# -- the watchdog thread ---------------------------------------------------------------

_PACKAGE = __file__.rsplit("/", 1)[0]
_watchdog: threading.Thread | None = None
#: Whether this kernel keeps per-thread CPU-wait counts (Linux's schedstat).
_HAS_CLOCKS = os.path.exists(f"/proc/self/task/{threading.get_native_id()}/schedstat")
_interval = 0.010
_lock = threading.Lock()


def _extract(frame: FrameType | None, limit: int = 40) -> list[tuple[str, int, str]]:
    out: list[tuple[str, int, str]] = []
    while frame is not None and len(out) < limit:
        code = frame.f_code
        out.append((code.co_filename, frame.f_lineno, code.co_name))
        frame = frame.f_back
    return out


def _watch() -> None:
    current_frames = sys._current_frames
    while True:
        time.sleep(_interval)
        now = perf_counter()
        states = list(_states.values())
        for state in states:
            _tick(state, now)
        stuck = [s for s in states if s.log is not None and now - s.start > _interval]
        if not stuck:
            continue
        frames = current_frames()
        for state in stuck:
            owner = state.cur
            if owner is not None:
                state.samples.append((now, owner, _extract(frames.get(state.ident))))


def _tick(state: ThreadState, now: float) -> None:
    """Read the thread's CPU wait; forget a thread that has exited."""
    clock = state.clock
    if clock is None and _HAS_CLOCKS:
        clock = state.clock = WaitClock.of(state.native)
        if clock is None:  # no such thread any more
            _forget(state)
    elif clock is not None:
        clock.tick(now)
        if clock.fd is None:
            _forget(state)


def _forget(state: ThreadState) -> None:
    if _states.get(state.native) is state:
        del _states[state.native]


def start(threshold: float) -> None:
    """Start the shared watchdog thread (once), sampling at least twice per threshold."""
    global _watchdog, _interval
    with _lock:
        _interval = max(0.005, min(_interval, threshold / 2))
        if _on_gc not in gc.callbacks:
            gc.callbacks.append(_on_gc)
        if _watchdog is None or not _watchdog.is_alive():
            _watchdog = threading.Thread(
                target=_watch, name="middleware_stack-watchdog", daemon=True
            )
            _watchdog.start()


def sampled_stack(owner: Any, start: float, end: float) -> list[tuple[str, int, str]] | None:
    """The stack sampled most often while ``owner``'s step ran between ``start`` and
    ``end`` (the first of those, on a tie): where the step spent its time. Not simply the
    first sample, which may catch a moment the step did not linger in (a garbage
    collection callback, say) and would point the developer at the wrong line."""
    samples: deque[Sample] = owner.tls.samples
    counts: dict[tuple[tuple[str, int, str], ...], int] = {}
    best: list[tuple[str, int, str]] | None = None
    most = 0
    for when, frame, stack in samples:
        if frame is owner and start <= when <= end + _interval and stack is not None:
            key = tuple(stack)
            seen = counts[key] = counts.get(key, 0) + 1
            if seen > most:
                best, most = stack, seen
    return best


def format_stack(stack: list[tuple[str, int, str]] | None, depth: int = 4) -> str:
    """The innermost frames of the step, outside this package, innermost last."""
    if not stack:
        return "    (no stack sample: the watchdog did not run during the step)"
    import linecache

    keep: list[tuple[str, int, str]] = []
    for filename, lineno, name in stack:
        if "/asyncio/" in filename:
            if keep:
                break  # reached the event loop: the rest is the loop's caller
            continue
        if filename.startswith(_PACKAGE):
            continue
        keep.append((filename, lineno, name))
        if len(keep) == depth:
            break
    lines = []
    for filename, lineno, name in reversed(keep):
        lines.append(f'    File "{filename}", line {lineno}, in {name}')
        source = linecache.getline(filename, lineno).strip()
        if source:
            lines.append(f"      {source}")
    return "\n".join(lines) or "    (only asyncio frames were running)"
