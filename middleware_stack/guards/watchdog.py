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
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from types import FrameType
from typing import Any

__all__ = ["ThreadState", "cpu_wait", "format_stack", "sampled_stack", "start", "thread_state"]

perf_counter = time.perf_counter

#: A stack sample: (perf_counter time, owner frame, [(file, line, function), ...]).
Sample = tuple[float, Any, list[tuple[str, int, str]]]


class ThreadState:
    """A loop thread's step bookkeeping, read by the watchdog without locks."""

    __slots__ = (
        "cur",
        "ident",
        "kind",
        "log",
        "loop",
        "samples",
        "sched",
        "start",
        "waits",
    )

    def __init__(self) -> None:
        self.cur: Any = None  # the frame whose code runs now; None outside guarded steps
        self.kind: Any = None  # which of its code: "call", "send", "receive" or "task"
        self.log: list[Any] | None = None  # hand-overs of the driven step, else None
        self.start = 0.0  # perf_counter at the start of the driven step
        self.loop: Any = None
        self.ident = threading.get_ident()
        self.samples: deque[Sample] = deque(maxlen=32)
        #: (perf_counter time, seconds this thread had waited for a CPU, cumulative)
        self.waits: deque[tuple[float, float]] = deque(maxlen=256)
        self.sched = _open_schedstat(threading.get_native_id())


_local = threading.local()
_states: dict[int, ThreadState] = {}


def thread_state() -> ThreadState:
    try:
        return _local.state  # type: ignore[no-any-return]
    except AttributeError:
        state = _local.state = ThreadState()
        _states[state.ident] = state
        return state


# -- waiting for a CPU -----------------------------------------------------------------


def _open_schedstat(native_id: int) -> int | None:
    try:
        fd = os.open(f"/proc/self/task/{native_id}/schedstat", os.O_RDONLY)
    except OSError:
        return None
    if _read_wait(fd) is None:
        os.close(fd)
        return None
    return fd


def _read_wait(fd: int) -> float | None:
    """Seconds the thread has spent runnable but off the CPU, since it started."""
    try:
        return int(os.pread(fd, 64, 0).split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def _record_wait(state: ThreadState, now: float) -> None:
    fd = state.sched
    if fd is None:
        return
    waited = _read_wait(fd)
    if waited is None:  # the thread has exited
        state.sched = None
        os.close(fd)
        return
    state.waits.append((now, waited))


def cpu_wait(state: ThreadState, start: float, end: float) -> float:
    """Seconds the thread waited for a CPU between ``start`` and ``end`` (now, or just
    before): the kernel's count now, minus its count at the last tick at or before
    ``start``. An over-estimate by the wait between that tick and ``start``, never an
    under-estimate, so a loaded host cannot turn its own delay into a report.
    Called on the thread itself, only for a step already longer than the threshold.
    """
    fd = state.sched
    if fd is None:
        return 0.0
    now = _read_wait(fd)
    if now is None:
        return 0.0
    before = None
    for when, waited in reversed(state.waits):
        if when <= start:
            before = waited
            break
    if before is None:  # no tick before the step is left: take the oldest inside it
        if not state.waits:
            return 0.0
        before = state.waits[0][1]
    return max(0.0, min(now - before, end - start))


# -- the watchdog thread ---------------------------------------------------------------

_PACKAGE = __file__.rsplit("/", 1)[0]
_watchdog: threading.Thread | None = None
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
            _record_wait(state, now)
        stuck = [s for s in states if s.log is not None and now - s.start > _interval]
        if not stuck:
            continue
        frames = current_frames()
        for state in stuck:
            owner = state.cur
            if owner is not None:
                state.samples.append((now, owner, _extract(frames.get(state.ident))))


def start(threshold: float) -> None:
    """Start the shared watchdog thread (once), sampling at least twice per threshold."""
    global _watchdog, _interval
    with _lock:
        _interval = max(0.005, min(_interval, threshold / 2))
        if _watchdog is None or not _watchdog.is_alive():
            _watchdog = threading.Thread(
                target=_watch, name="middleware_stack-watchdog", daemon=True
            )
            _watchdog.start()


def sampled_stack(owner: Any, start: float, end: float) -> list[tuple[str, int, str]] | None:
    """The first stack sampled while ``owner``'s step ran between ``start`` and ``end``."""
    samples: deque[Sample] = owner.tls.samples
    for when, frame, stack in samples:
        if frame is owner and start <= when <= end + _interval:
            return stack
    return None


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
