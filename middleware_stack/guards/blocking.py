"""Who held the event loop: driven steps and their timestamped hand-overs.

asyncio's debug mode can only name the *task* that blocked. To name the *layer*, the
outermost guarded boundary of a request drives its coroutine one step (one
``coro.send``) at a time with :func:`drive`. Inside a step, control passes between
layers synchronously and strictly nested: into a layer's inner app and back, into the
``send``/``receive`` closures a layer installed and back. Each such hand-over is one
timestamped entry ``(perf_counter(), frame, kind)`` in the step's log, so a layer's own
time in the step is the sum of the stretches that start at its entries, which is its
whole time minus the inner layers' (the subtraction asyncio cannot do).

Per hand-over that is one ``perf_counter`` and one list append; the log is read only
when the whole step took longer than the lowest threshold, which a healthy step never
does. The current frame (``ThreadState.cur``) also links a new boundary to the one
that called it (see ``guards.checkpoint``), and tells the task factory who spawned a
task: a coroutine scheduled during a guarded step is driven, and charged, as the
spawning layer's ``"task"``.

Only the step is timed here; the stack sample a report shows, the time the loop's
thread waited for a CPU (taken off, since a loaded host's delay is not a layer's) and
the garbage collections it ran (taken off too) come from
:mod:`middleware_stack.guards.watchdog`.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import time
import types
from collections.abc import Awaitable, Callable, Generator
from types import CoroutineType, GeneratorType
from typing import Any, Protocol

from asgiref.sync import AsyncToSync

from middleware_stack.guards import watchdog
from middleware_stack.guards.watchdog import ThreadState, thread_state

__all__ = [
    "Owner",
    "ThreadState",
    "charged",
    "drive",
    "driven",
    "install_task_factory",
    "server_side",
    "start_watchdog",
    "thread_state",
]

perf_counter = time.perf_counter

#: One hand-over inside a driven step: (perf_counter time, frame now running, kind).
Entry = tuple[float, Any, Any]


class Owner(Protocol):
    """What a step is attributed to: a boundary frame (see ``guards.checkpoint``)."""

    tls: ThreadState

    def blocked(self, kind: str, seconds: float, start: float, end: float) -> None: ...

    def returned(self) -> None: ...

    @property
    def threshold(self) -> float: ...


#: The lowest threshold of any guard: a shorter step cannot hold a report.
_min_threshold = math.inf


def start_watchdog(threshold: float) -> None:
    """Blocking is attributed from now on: long steps are looked at, the watchdog runs."""
    global _min_threshold
    _min_threshold = min(_min_threshold, threshold)
    watchdog.start(threshold)


def iterator(aw: Awaitable[Any]) -> Any:
    """What ``yield from`` can delegate to: the coroutine itself, or its ``__await__``."""
    kind: Any = type(aw)
    if kind is CoroutineType or kind is GeneratorType:
        return aw
    return aw.__await__()


@types.coroutine
def drive(aw: Awaitable[Any], owner: Owner, kind: str) -> Generator[Any, Any, Any]:
    """Run ``aw`` to completion one step at a time, each step logged from ``owner``.

    The outermost boundary of a request, and every task a guarded layer spawns, run
    under this. When ``kind`` is ``"call"`` the owner's ``returned()`` runs after a
    normal return (the completion checks). A step that starts while another step is
    being driven on this thread (an eager task, a stack called inline) joins that
    step's log as a plain hand-over.
    """
    it = iterator(aw)
    tls = owner.tls
    cur: Any = owner
    ckind: Any = kind
    value: Any = None
    exc: BaseException | None = None
    while True:
        log = tls.log
        outer: Any = None
        start = perf_counter()
        if log is None:
            log = tls.log = [(start, cur, ckind)]
            tls.start = start
        else:
            outer = tls.cur, tls.kind
            log.append((start, cur, ckind))
        tls.cur = cur
        tls.kind = ckind
        try:
            yielded = it.send(value) if exc is None else it.throw(exc)
        except StopIteration as stop:
            _end_step(tls, log, outer, start)
            if kind == "call":
                owner.returned()
            return stop.value
        except BaseException:
            _end_step(tls, log, outer, start)
            raise
        cur = tls.cur
        ckind = tls.kind
        _end_step(tls, log, outer, start)
        try:
            value = yield yielded
            exc = None
        except GeneratorExit:
            it.close()
            raise
        except BaseException as e:  # CancelledError and friends go to the coroutine
            exc = e
            value = None


def _end_step(tls: ThreadState, log: list[Entry], outer: Any, start: float) -> None:
    end = perf_counter()
    if outer is None:
        tls.log = None
        tls.cur = tls.kind = None
        if end - start > _min_threshold:
            log.append((end, None, None))
            _blame(tls, log, start, end)
    else:
        tls.cur, tls.kind = outer
        log.append((end, outer[0], outer[1]))


def _blame(tls: ThreadState, log: list[Entry], start: float, end: float) -> None:
    """Sum each (frame, kind)'s stretches of a long step; report those over threshold.

    A frame's share of the time the thread waited for a CPU during the step (in
    proportion to its stretches) is not its own: it is taken off before the comparison,
    as are the garbage collections that ran inside its stretches.
    """
    own: dict[tuple[Any, Any], float] = {}
    pauses = watchdog.gc_pauses(tls, start, end)
    for i in range(len(log) - 1):
        when, frame, kind = log[i]
        if frame is not None:
            key = (frame, kind)
            until = log[i + 1][0]
            seconds = until - when
            for a, b in pauses:  # time in the garbage collector is no layer's
                if a < until and b > when:
                    seconds -= min(b, until) - max(a, when)
            own[key] = own.get(key, 0.0) + seconds
    if not any(seconds > frame.threshold for (frame, _), seconds in own.items()):
        return
    share = watchdog.cpu_wait(tls, start, end) / (end - start)
    for (frame, kind), seconds in own.items():
        seconds -= seconds * share
        if seconds > frame.threshold:
            frame.blocked(kind, seconds, start, end)


async def charged(
    aw: Awaitable[Any],
    owner: Owner,
    kind: str,
    then: Callable[[Any], None] | None = None,
) -> Any:
    """Await ``aw`` with its code charged to ``owner`` as ``kind``: an inner boundary's
    layer (``"call"``), or a send/receive closure that ``owner``'s layer installed.

    ``then(owner)`` runs after a normal return (the completion checks of a call). A
    native coroutine, so that a layer may hand an inner call to ``create_task`` or a
    task group, which accept nothing else on Python 3.12+.
    """
    tls = owner.tls
    log = tls.log
    if log is None:  # not inside a driven step: nothing to time or link
        result = await aw
    else:
        prev = tls.cur
        pkind = tls.kind
        log.append((perf_counter(), owner, kind))
        tls.cur = owner
        tls.kind = kind
        try:
            result = await aw
        finally:
            log = tls.log  # the step that ends here may be a later one, or none
            if log is not None:
                log.append((perf_counter(), prev, pkind))
                tls.cur = prev
                tls.kind = pkind
    if then is not None:
        then(owner)
    return result


async def server_side(tls: ThreadState, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """Call and await the server's own ``send`` or ``receive`` with no layer current.

    Its time is nobody's to blame, and what it starts is not a layer's: a server may
    start the next pipelined request's task from inside the previous one's ``send``,
    and that request must begin as a request of its own, not as an inner call.
    """
    log = tls.log
    if log is None:
        return await fn(*args)
    prev = tls.cur
    pkind = tls.kind
    log.append((perf_counter(), None, None))
    tls.cur = tls.kind = None
    try:
        return await fn(*args)
    finally:
        log = tls.log
        if log is not None:
            log.append((perf_counter(), prev, pkind))
            tls.cur = prev
            tls.kind = pkind


async def driven(aw: Awaitable[Any], owner: Owner, kind: str = "call") -> Any:
    """:func:`drive` as a native coroutine: a request's outermost boundary (``"call"``),
    or a task a guarded layer spawned (``"task"``)."""
    return await drive(aw, owner, kind)


_MAIN_WRAP = AsyncToSync.main_wrap.__code__

#: The owner whose step handed the request's sync work to a thread (the one-hop path,
#: :mod:`middleware_stack.onehop`), as the request's context carries it there.
hop_owner: contextvars.ContextVar[Any] = contextvars.ContextVar("middleware_stack_hop_owner")


def mark_hop() -> None:
    """Before sync work goes to a thread: remember whose step sent it.

    An async view inside the sync chain comes back to the loop through asgiref's
    ``AsyncToSync``, which creates its task from a loop callback, outside every driven
    step: the task factory finds no owner there, and the view's blocking would be charged
    to nobody. The thread's context (copied from the request's) carries this owner to it.
    """
    owner = thread_state().cur
    if owner is not None:
        hop_owner.set(owner)


def _hop_owner(coro: Any) -> Any:
    """The owner of an ``AsyncToSync`` coroutine sent back from a hop, else None."""
    if coro.cr_code is not _MAIN_WRAP or coro.cr_frame is None:
        return None
    context = coro.cr_frame.f_locals.get("context")
    if isinstance(context, list) and context and isinstance(context[0], contextvars.Context):
        return context[0].get(hop_owner)
    return None


def _guarded_factory(previous: Any) -> Any:
    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        owner = thread_state().cur
        if owner is None and type(coro) is CoroutineType:
            owner = _hop_owner(coro)
        if owner is None or type(coro) is not CoroutineType:
            if previous is not None:
                return previous(loop, coro, **kwargs)
            return asyncio.Task(coro, loop=loop, **kwargs)
        wrapper = driven(coro, owner, "task")
        if previous is not None:
            task = previous(loop, wrapper, **kwargs)
        else:
            task = asyncio.Task(wrapper, loop=loop, **kwargs)
        # A task cancelled before its first step never starts the wrapper, so nothing
        # starts or closes ``coro``, and Python warns that it was "never awaited" (Django
        # 6.1 cancels its listen_for_disconnect task so when a response is sent without
        # a pause). Close it once the task is done: a no-op when it ran.
        task.add_done_callback(lambda _task: coro.close())
        return task

    factory.middleware_stack_guard = True  # type: ignore[attr-defined]
    return factory


def install_task_factory(loop: asyncio.AbstractEventLoop) -> None:
    """Charge tasks created during a guarded step to the layer that created them.

    Chains to a task factory already set on the loop; installed once per loop.
    """
    current = loop.get_task_factory()
    if getattr(current, "middleware_stack_guard", False):
        return
    loop.set_task_factory(_guarded_factory(current))
