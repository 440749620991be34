"""The one-hop path's lean hand-over (middleware_stack.hopcall) keeps what asgiref's
``sync_to_async`` gives the code it runs: the lease's thread, context variables both
ways, an ``async_to_sync`` inside that comes back to this loop, and its cancellation."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.local import Local
from asgiref.sync import ThreadSensitiveContext, async_to_sync, sync_to_async

from middleware_stack import hopcall, threads
from middleware_stack.lease import Lease
from middleware_stack.threads import ExecutorPool

pytestmark = pytest.mark.skipif(
    not threads.EXECUTOR_SUPPORTED,
    reason="leases need asgiref>=3.13 (ThreadSensitiveContext(executor=...))",
)

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")
LOCAL = Local()


@pytest.fixture
def pool() -> Iterator[ExecutorPool]:
    pool = ExecutorPool(4, max_threads=1, hop_queue=False)
    yield pool
    pool.close()


async def wait_until(predicate: Any) -> bool:
    for _ in range(1000):
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return bool(predicate())


async def test_a_call_runs_on_the_leases_worker_and_returns_its_result(pool: ExecutorPool) -> None:
    lease = pool.acquire(hop=True)
    try:
        first = await hopcall.call(lease, lambda: threading.current_thread())
        second = await hopcall.call(lease, lambda: threading.current_thread())
        assert first is second is not threading.current_thread()
        assert first.name.startswith("middleware_stack-worker-")
        assert await hopcall.call(lease, lambda a, b: a + b, 2, 3) == 5
    finally:
        pool.release(lease)


async def test_an_exception_in_the_call_reaches_the_caller_as_itself(pool: ExecutorPool) -> None:
    lease = pool.acquire(hop=True)

    def fail() -> None:
        raise KeyError("from the worker")

    try:
        with pytest.raises(KeyError, match="from the worker"):
            await hopcall.call(lease, fail)
    finally:
        pool.release(lease)


async def test_context_variables_go_in_and_come_back_out(pool: ExecutorPool) -> None:
    lease = pool.acquire(hop=True)
    VAR.set("caller")

    def swap() -> str:
        seen = VAR.get()
        VAR.set("worker")
        LOCAL.value = "set in the worker"
        return seen

    try:
        assert await hopcall.call(lease, swap) == "caller"
        assert VAR.get() == "worker"  # as sync_to_async copies it back
        assert LOCAL.value == "set in the worker"
    finally:
        pool.release(lease)


async def test_async_to_sync_inside_the_call_runs_on_the_callers_loop(pool: ExecutorPool) -> None:
    """An async view inside the sync chain: asgiref finds this loop through the thread
    local the call sets, instead of starting a loop of its own in another thread."""
    lease = pool.acquire(hop=True)
    loop = asyncio.get_running_loop()

    async def where() -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
        return asyncio.get_running_loop(), threading.current_thread()

    try:
        ran_on_loop, ran_on_thread = await hopcall.call(lease, async_to_sync(where))
        assert ran_on_loop is loop
        assert ran_on_thread is threading.current_thread()
    finally:
        pool.release(lease)


async def test_cancelling_a_running_call_raises_at_once_and_the_call_finishes(
    pool: ExecutorPool,
) -> None:
    lease = pool.acquire(hop=True)
    entered, gate, finished = threading.Event(), threading.Event(), threading.Event()

    def slow() -> str:
        entered.set()
        gate.wait(10)
        finished.set()
        return "late"

    try:
        task = asyncio.ensure_future(hopcall.call(lease, slow))
        assert await wait_until(entered.is_set)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not finished.is_set()  # the caller did not wait for the sync code
        gate.set()
        assert await wait_until(finished.is_set)  # which ran to its end, result dropped
    finally:
        gate.set()
        pool.release(lease)


async def test_a_call_cancelled_while_queued_for_a_thread_never_runs(pool: ExecutorPool) -> None:
    busy = pool.acquire(hop=True)
    queued = pool.acquire(hop=True)
    entered, gate = threading.Event(), threading.Event()
    ran: list[str] = []
    try:
        holder = asyncio.ensure_future(hopcall.call(busy, lambda: (entered.set(), gate.wait(10))))
        assert await wait_until(entered.is_set)
        task = asyncio.ensure_future(hopcall.call(queued, lambda: ran.append("ran")))
        assert await wait_until(lambda: pool.waiting == 1)  # at the bound of one thread
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gate.set()
        await holder
        pool.release(busy)  # its thread goes to the queued lease, which gave up
        await asyncio.sleep(0.1)
        assert ran == []
    finally:
        gate.set()
        pool.release(queued)


async def test_cancelling_reaches_an_async_view_first_and_its_absorbing_it_keeps_the_result(
    pool: ExecutorPool,
) -> None:
    """As asgiref does: the cancel goes to the task async_to_sync runs on this loop; if
    that task swallows it, the sync call goes on and its result is returned."""
    lease = pool.acquire(hop=True)
    started = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def absorbing() -> str:
        loop.call_soon_threadsafe(started.set)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return "absorbed"
        return "slept"

    def chain() -> str:
        return "sync saw " + async_to_sync(absorbing)()

    try:
        task = asyncio.ensure_future(hopcall.call(lease, chain))
        await asyncio.wait_for(started.wait(), 10)
        task.cancel()
        assert await task == "sync saw absorbed"
    finally:
        pool.release(lease)


async def test_a_loop_closed_before_the_reply_leaves_the_worker_serving() -> None:
    """A reply to a loop that is gone (a server that stopped) is dropped, not raised in
    the worker thread, which goes on to run the next call."""
    pool = ExecutorPool(4, max_threads=1, hop_queue=False)
    gate = threading.Event()

    def in_old_loop() -> Lease:
        async def start() -> tuple[Lease, asyncio.Task[Any]]:
            lease = pool.acquire(hop=True)
            waiting = asyncio.ensure_future(hopcall.call(lease, gate.wait, 10))
            await asyncio.sleep(0.05)
            return lease, waiting

        loop = asyncio.new_event_loop()
        try:
            lease, waiting = loop.run_until_complete(start())
            waiting.cancel()  # the server's shutdown: the request is cancelled...
            loop.run_until_complete(asyncio.gather(waiting, return_exceptions=True))
            return lease
        finally:
            loop.close()  # ...and its loop closed, while the call still runs

    try:
        lease = await asyncio.to_thread(in_old_loop)
        gate.set()
        pool.release(lease)
        fresh = pool.acquire(hop=True)
        try:
            assert await asyncio.wait_for(hopcall.call(fresh, lambda: "still serving"), 10)
        finally:
            pool.release(fresh)
    finally:
        gate.set()
        pool.close()


def test_a_sync_callers_thread_takes_the_call_as_with_asgiref_unless_a_lease_context_hides_it(
    pool: ExecutorPool,
) -> None:
    """asgiref's rule, kept: under a sync caller's ``async_to_sync`` (a thread waiting
    for the coroutine), thread-sensitive code runs on that caller's thread, so the lean
    call steps aside; inside ``ThreadSensitiveContext(executor=lease)``, as the boundary
    enters it, asgiref hides that thread and uses the lease, and so does the lean call."""
    caller = threading.current_thread()

    async def outside_a_lease() -> bool:
        return hopcall.usable()

    async def inside_a_lease() -> tuple[bool, threading.Thread, threading.Thread]:
        lease = pool.acquire(hop=True)
        try:
            async with ThreadSensitiveContext(executor=lease):  # type: ignore[call-arg,unused-ignore]
                asgirefs = await sync_to_async(threading.current_thread)()
                lean = await hopcall.call(lease, threading.current_thread)
                return hopcall.usable(), asgirefs, lean
        finally:
            pool.release(lease)

    assert async_to_sync(outside_a_lease)() is False
    assert asyncio.run(outside_a_lease()) is True
    usable, asgirefs, lean = async_to_sync(inside_a_lease)()
    assert usable is True
    assert asgirefs is lean is not caller
