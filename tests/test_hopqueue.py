"""The hop queue: a one-hop request that finds a hop running waits for that worker's
hand-on instead of waking a thread of its own, and spills onto another thread when the
process is not busy (the hop is blocked, not working) or when it has waited too long.
Requests on Django's own path never wait for a hop."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from middleware_stack.exceptions import StackConfigurationError
from middleware_stack.hopqueue import HopQueue
from middleware_stack.threads import ExecutorPool
from middleware_stack.worker import settle_here
from tests.asgi import call
from tests.test_onehop import (  # noqa: F401 (urls: fixture)
    ENTERED,
    EVENTS,
    GATE,
    needs_executor,
    stack,
    urls,
    wait_until,
)


def _hops(app: Any) -> tuple[ExecutorPool, HopQueue]:
    pool = app.boundary.pool
    assert pool is not None and pool.hops is not None
    return pool, pool.hops


def _forced(
    app: Any, busy: float = 0.0, fresh: float = 60.0, patience: float = 60.0, window: float = 0.0
) -> tuple[ExecutorPool, HopQueue]:
    """The pool and its hop queue with the process state forced, not measured: by
    default "working" (any CPU use counts), hops "fresh" and patience out of reach, the
    CPU use read at every decision. So a test's outcome never depends on the load."""
    pool, hops = _hops(app)
    hops.busy, hops.fresh, hops.patience, hops.window = busy, fresh, patience, window
    return pool, hops


def _threads(*whats: str) -> list[str]:
    return [name for what, name in EVENTS if what in whats]


async def _block(app: Any) -> asyncio.Future[Any]:
    """A request whose view blocks on GATE (as on I/O); returns once its view runs."""
    held = asyncio.ensure_future(call(app, path="/block/"))
    assert await wait_until(ENTERED.is_set)
    return held


@needs_executor
async def test_a_request_that_finds_a_hop_running_waits_for_its_worker_and_runs_on_it() -> None:
    app = stack()
    pool, _ = _forced(app)  # worth waiting: never spill
    await call(app, path="/sync/")  # one warm thread, idle
    held = await _block(app)
    waiting = asyncio.ensure_future(call(app, path="/sync/"))
    assert await wait_until(lambda: pool.waiting == 1)
    await asyncio.sleep(0.05)  # 25 timer periods: still waiting, no thread woken for it
    assert (pool.waiting, pool.live, pool.idle) == (1, 1, 0)
    GATE.set()
    assert (await waiting).status == 200 and (await held).status == 200
    assert len(set(_threads("blocking view returned", "view"))) == 1  # handed on
    assert pool.threads_started == 1 and pool.spilled == 0


@needs_executor
async def test_a_request_that_finds_the_process_idle_takes_a_thread_at_once() -> None:
    """The defaults: a hop blocked on I/O leaves the process idle, so a request does not
    wait for it (or, measured in a busy moment, is spilled by the timer)."""
    app = stack()
    pool, hops = _hops(app)
    hops.fresh = 60.0  # the blocked hop counts as ending soon: only the CPU rule decides
    held = await _block(app)
    # A period with the process idle (the first request's own CPU time measured apart):
    # the next request's measure reads it.
    await asyncio.sleep(0.02)
    hops.measure(time.monotonic())
    await asyncio.sleep(0.02)
    response = await asyncio.wait_for(call(app, path="/sync/"), 30)
    assert response.status == 200 and not held.done()  # served while the hop still blocks
    assert pool.live == 2 and pool.waited == 0
    GATE.set()
    assert (await held).status == 200
    blocked, served = _threads("blocking view returned"), _threads("view")
    assert set(blocked).isdisjoint(served)


@needs_executor
async def test_a_waiting_request_spills_onto_another_thread_once_the_process_is_idle() -> None:
    app = stack()
    pool, hops = _forced(app)  # the request waits
    held = await _block(app)
    waiting = asyncio.ensure_future(call(app, path="/sync/"))
    assert await wait_until(lambda: pool.waiting == 1)
    hops.busy = float("inf")  # the next period measures the process idle: spill
    response = await asyncio.wait_for(waiting, 30)
    assert response.status == 200 and not held.done()
    assert pool.spilled == 1 and pool.live == 2
    GATE.set()
    assert (await held).status == 200


@needs_executor
async def test_a_busy_process_still_spills_a_request_that_waited_past_the_patience() -> None:
    app = stack()
    pool, _ = _forced(app, patience=0.05)  # only the patience spills
    held = await _block(app)
    response = await asyncio.wait_for(call(app, path="/sync/"), 30)
    assert response.status == 200 and not held.done()
    assert pool.spilled == 1
    GATE.set()
    await held


@needs_executor
async def test_requests_on_djangos_path_never_wait_for_a_busy_hop() -> None:
    app = stack(ASGI_ONE_HOP=False)
    pool, _ = _forced(app)
    held = await _block(app)
    response = await asyncio.wait_for(call(app, path="/sync/"), 30)
    assert response.status == 200 and not held.done()
    assert pool.waited == 0 and pool.spilled == 0  # its own thread, at once
    GATE.set()
    await held


@needs_executor
async def test_at_the_thread_bound_a_spill_waits_for_a_released_thread() -> None:
    app = stack(ASGI_THREAD_POOL_MAX=1)
    pool, hops = _hops(app)
    hops.busy, hops.window = float("inf"), 0.0  # never "working": due at each period
    held = await _block(app)
    waiting = asyncio.ensure_future(call(app, path="/sync/"))
    assert await wait_until(lambda: pool.waiting == 1)
    await asyncio.sleep(0.05)  # the timer found it due, and no thread to give it
    assert (pool.live, pool.waiting, pool.spilled) == (1, 1, 0)
    GATE.set()
    assert (await waiting).status == 200 and (await held).status == 200
    assert pool.threads_started == 1


@needs_executor
async def test_a_request_cancelled_while_waiting_for_a_hop_leaves_the_queue_and_the_timer_stops() -> (
    None
):
    app = stack()
    pool, hops = _forced(app)
    held = await _block(app)
    waiting = asyncio.ensure_future(call(app, path="/sync/"))
    assert await wait_until(lambda: pool.waiting == 1)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert pool.waiting == 0
    assert await wait_until(lambda: hops._due is None)  # nothing waits: no more periods
    GATE.set()
    assert (await held).status == 200
    assert pool.threads_started == 1 and pool.spilled == 0


@needs_executor
async def test_asgi_hop_queue_false_gives_each_request_in_flight_a_thread_at_once() -> None:
    app = stack(ASGI_HOP_QUEUE=False)
    pool = app.boundary.pool
    assert pool is not None and pool.hops is None
    held = await _block(app)
    assert (await asyncio.wait_for(call(app, path="/sync/"), 30)).status == 200
    assert pool.waited == 0 and pool.live == 2
    GATE.set()
    await held


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_a_malformed_asgi_hop_queue_is_a_configuration_error_naming_it(value: Any) -> None:
    with pytest.raises(StackConfigurationError, match="ASGI_HOP_QUEUE") as caught:
        stack(ASGI_HOP_QUEUE=value)
    assert caught.value.id == "middleware_stack.E010"


@needs_executor
async def test_a_request_does_not_wait_for_a_hop_that_has_run_long_even_in_a_busy_process() -> None:
    app = stack()
    pool, hops = _hops(app)
    hops.busy, hops.patience, hops.window = 0.0, 60.0, 0.0  # "working"; freshness 10 ms
    held = await _block(app)
    await asyncio.sleep(0.02)  # the blocked hop is older than that now
    response = await asyncio.wait_for(call(app, path="/sync/"), 30)
    assert response.status == 200 and not held.done()
    assert pool.waited == 0 and pool.live == 2
    GATE.set()
    await held


@needs_executor
async def test_a_waiting_request_spills_once_the_hop_it_waits_for_has_run_long() -> None:
    app = stack()
    pool, hops = _forced(app)  # waits
    held = await _block(app)
    waiting = asyncio.ensure_future(call(app, path="/sync/"))
    assert await wait_until(lambda: pool.waiting == 1)
    hops.fresh = 0.002  # the blocked hop now counts as long-running: spill at a period
    response = await asyncio.wait_for(waiting, 30)
    assert response.status == 200 and not held.done()
    assert pool.spilled == 1
    GATE.set()
    await held


async def test_after_a_spill_a_finished_hops_thread_leaves_the_waiters_to_another_busy_hop() -> (
    None
):
    """The threads taking turns shrink back: with another recent hop still running (it
    will hand on), a thread whose hop ends goes idle instead of taking the waiter."""
    pool = ExecutorPool(4, on_release=lambda: None)
    hops = pool.hops
    assert hops is not None
    hops.busy, hops.window, hops.patience = 0.0, 0.0, 60.0  # "working"; never spilled
    gates = {"a": threading.Event(), "b": threading.Event()}

    def hop(gate: str) -> str:
        if gate in gates:
            gates[gate].wait(10)
        settle_here()  # as the one-hop path's last call: the worker hands itself on
        return threading.current_thread().name

    leases = [pool.acquire(hop=True) for _ in range(3)]
    try:
        first = asyncio.wrap_future(leases[0].submit(hop, "a"))
        hops.fresh = 0.0  # the second takes a thread of its own (as after a spill)
        second = asyncio.wrap_future(leases[1].submit(hop, "b"))
        hops.fresh = 60.0
        third = asyncio.wrap_future(leases[2].submit(hop, "c"))
        assert pool.waiting == 1 and pool.live == 2
        gates["a"].set()
        name_a = await first
        assert await wait_until(lambda: pool.idle == 1)  # the first's thread went idle
        assert pool.waiting == 1  # the waiter was left to the second hop
        gates["b"].set()
        name_b = await second
        assert await asyncio.wait_for(third, 30) == name_b != name_a
        assert pool.spilled == 0 and pool.threads_started == 2
    finally:
        for gate in gates.values():
            gate.set()
        for lease in leases:
            pool.release(lease)
        pool.close()
