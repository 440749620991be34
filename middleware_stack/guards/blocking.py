"""Who held the event loop: step-by-step driving, a watchdog, and a task factory.

asyncio's debug mode can only name the *task* that blocked. To name the *layer*, every
guarded coroutine is driven one step (one ``coro.send``) at a time by :func:`drive`,
which times the step with ``perf_counter`` and subtracts the steps of the guarded
coroutines nested inside it. Steps are synchronous and strictly nested, so a plain
per-thread accumulator (:class:`ThreadState`) is enough; no contextvar is set per step.

What a layer's own code costs therefore includes the ``send``/``receive`` closures it
installs (the inner boundary drives them on the layer's behalf) and the tasks it
spawns: a task factory installed on the loop wraps a coroutine created during a
guarded step in a driver owned by the same layer.

A watchdog thread wakes every few milliseconds; when the loop thread has been inside
the same step for longer than the interval, it records that thread's Python stack
(``sys._current_frames``). A step that ends over the threshold is reported with the
sample taken while it ran, which shows the ``time.sleep(...)`` or the slow call.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import types
from collections import deque
from collections.abc import Awaitable, Coroutine, Generator
from types import CoroutineType, FrameType
from typing import Any, Protocol

__all__ = ["Owner", "ThreadState", "drive", "install_task_factory", "thread_state"]

perf_counter = time.perf_counter

#: A stack sample: (perf_counter time, owner frame, [(file, line, function), ...]).
Sample = tuple[float, Any, list[tuple[str, int, str]]]


class Owner(Protocol):
    """What a step is attributed to: a boundary frame (see ``guards.checkpoint``)."""

    tls: ThreadState

    def blocked(self, kind: str, seconds: float, start: float, end: float) -> None: ...

    def returned(self) -> None: ...

    @property
    def threshold(self) -> float: ...


class ThreadState:
    """The loop thread's step bookkeeping, read by the watchdog without locks."""

    __slots__ = ("done", "frame", "ident", "last", "loop", "nested", "samples")

    def __init__(self) -> None:
        self.frame: Any = None  # the Owner whose step is running, None between steps
        self.nested = 0.0  # seconds spent in guarded steps nested in the current one
        self.last = 0.0  # perf_counter at the start of the latest step
        self.loop: Any = None
        self.done: Any = None  # a finished future of ``loop``, awaited after one-step sends
        self.ident = threading.get_ident()
        self.samples: deque[Sample] = deque(maxlen=32)


_local = threading.local()
_states: dict[int, ThreadState] = {}


def thread_state() -> ThreadState:
    try:
        return _local.state  # type: ignore[no-any-return]
    except AttributeError:
        state = _local.state = ThreadState()
        _states[state.ident] = state
        return state


_NOTHING: Any = object()


@types.coroutine
def drive(
    aw: Awaitable[Any], owner: Owner, kind: str, yielded: Any = _NOTHING
) -> Generator[Any, Any, Any]:
    """Run ``aw`` to completion one step at a time, charging each step to ``owner``.

    A generator-based coroutine, so callers can return it straight to an ``await``
    without an extra awaitable object per message. When ``kind`` is ``"call"`` the
    owner's ``returned()`` runs after a normal return (the completion checks).
    ``yielded`` resumes an iterator whose first step :func:`step_now` already ran.
    """
    it: Any = aw if type(aw) is CoroutineType or yielded is not _NOTHING else aw.__await__()
    tls = owner.tls
    threshold = owner.threshold
    value: Any = None
    exc: BaseException | None = None
    if yielded is not _NOTHING:  # resumed after step_now(): hand the loop what it yielded
        try:
            value = yield yielded
        except GeneratorExit:
            it.close()
            raise
        except BaseException as e:
            exc = e
    while True:
        prev_frame = tls.frame
        prev_nested = tls.nested
        tls.frame = owner
        tls.nested = 0.0
        start = tls.last = perf_counter()
        try:
            yielded = it.send(value) if exc is None else it.throw(exc)
        except StopIteration as stop:
            end = perf_counter()
            own = end - start - tls.nested
            tls.frame = prev_frame
            tls.nested = prev_nested + end - start
            if own > threshold:
                owner.blocked(kind, own, start, end)
            if kind == "call":
                owner.returned()
            return stop.value
        except BaseException:
            end = perf_counter()
            own = end - start - tls.nested
            tls.frame = prev_frame
            tls.nested = prev_nested + end - start
            if own > threshold:
                owner.blocked(kind, own, start, end)
            raise
        end = perf_counter()
        own = end - start - tls.nested
        tls.frame = prev_frame
        tls.nested = prev_nested + end - start
        if own > threshold:
            owner.blocked(kind, own, start, end)
        try:
            value = yield yielded
            exc = None
        except GeneratorExit:
            it.close()
            raise
        except BaseException as e:  # CancelledError and friends go to the coroutine
            exc = e
            value = None


def step_now(aw: Awaitable[None], owner: Owner, kind: str) -> Awaitable[None]:
    """Run the first step of ``aw`` right away, charged to ``owner``; the rest on await.

    For ``send`` wrappers, which are awaited the moment they are called and nearly
    always finish in one step: that step then needs no generator, and the caller gets
    a finished future (the loop's, from the task-factory install) to await.
    """
    it: Any = aw if type(aw) is CoroutineType else aw.__await__()
    tls = owner.tls
    prev_frame = tls.frame
    prev_nested = tls.nested
    tls.frame = owner
    tls.nested = 0.0
    start = tls.last = perf_counter()
    try:
        yielded = it.send(None)
    except StopIteration:
        end = perf_counter()
        own = end - start - tls.nested
        tls.frame = prev_frame
        tls.nested = prev_nested + end - start
        if own > owner.threshold:
            owner.blocked(kind, own, start, end)
        done: Awaitable[None] = tls.done
        return done
    except BaseException:
        end = perf_counter()
        own = end - start - tls.nested
        tls.frame = prev_frame
        tls.nested = prev_nested + end - start
        if own > owner.threshold:
            owner.blocked(kind, own, start, end)
        raise
    end = perf_counter()
    own = end - start - tls.nested
    tls.frame = prev_frame
    tls.nested = prev_nested + end - start
    if own > owner.threshold:
        owner.blocked(kind, own, start, end)
    return drive(it, owner, kind, yielded)


async def _owned(coro: Awaitable[Any], owner: Owner) -> Any:
    return await drive(coro, owner, "task")


def _guarded_factory(previous: Any) -> Any:
    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        owner = thread_state().frame
        if owner is not None and type(coro) is CoroutineType:
            coro = _owned(coro, owner)
        if previous is not None:
            return previous(loop, coro, **kwargs)
        return asyncio.Task(coro, loop=loop, **kwargs)

    factory.middleware_stack_guard = True  # type: ignore[attr-defined]
    return factory


def install_task_factory(loop: asyncio.AbstractEventLoop) -> None:
    """Charge tasks created during a guarded step to the layer that created them.

    Chains to a task factory already set on the loop; installed once per loop.
    """
    state = thread_state()
    state.done = loop.create_future()
    state.done.set_result(None)
    current = loop.get_task_factory()
    if getattr(current, "middleware_stack_guard", False):
        return
    loop.set_task_factory(_guarded_factory(current))


# -- the watchdog ----------------------------------------------------------------------

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
        stuck = [
            s for s in list(_states.values()) if s.frame is not None and now - s.last > _interval
        ]
        if not stuck:
            continue
        frames = current_frames()
        for state in stuck:
            owner = state.frame
            if owner is not None:
                state.samples.append((now, owner, _extract(frames.get(state.ident))))


def start_watchdog(threshold: float) -> None:
    """Start the shared watchdog thread (once), sampling at least twice per threshold."""
    global _watchdog, _interval
    with _lock:
        _interval = max(0.005, min(_interval, threshold / 2))
        if _watchdog is None or not _watchdog.is_alive():
            _watchdog = threading.Thread(
                target=_watch, name="middleware_stack-watchdog", daemon=True
            )
            _watchdog.start()


def sampled_stack(owner: Owner, start: float, end: float) -> list[tuple[str, int, str]] | None:
    """The first stack sampled while ``owner``'s step ran between ``start`` and ``end``."""
    for when, frame, stack in owner.tls.samples:
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


def coroutine_of(aw: Awaitable[Any]) -> Coroutine[Any, Any, Any] | None:
    return aw if type(aw) is CoroutineType else None
