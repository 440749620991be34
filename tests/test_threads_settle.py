"""A pooled worker settled in its request's last call: the release hook (the dirty
connection reset) runs once, in that call, and is not queued again at release, which
would wake the thread once more per request. Anything run after it gets the hook
queued as before. A settled worker is handed straight on, from its own thread, to a
request waiting at the thread bound (before the first request's response is sent), so
under load the hops run back to back on a thread that does not sleep; a request that is
not settled (a streaming response) keeps its thread to the end."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

from middleware_stack import threads
from middleware_stack.threads import ExecutorPool, WorkerExecutor
from middleware_stack.worker import settle_here
from tests.asgi import call, http_scope
from tests.test_onehop import (  # noqa: F401 (urls, signals: fixtures)
    ENTERED,
    EVENTS,
    GATE,
    client,
    needs_executor,
    signals,
    stack,
    urls,
    wait_until,
)


def settling() -> str:
    settle_here()
    return threading.current_thread().name


def pooled(app: Any) -> ExecutorPool:
    """The stack's thread pool (these tests need thread reuse on)."""
    pool = app.boundary.pool
    assert pool is not None
    return pool


async def run(pool: ExecutorPool, *calls: Any) -> list[Any]:
    """One lease's calls in order, then its release."""
    lease = pool.acquire()
    try:
        return [await asyncio.wrap_future(lease.submit(fn)) for fn in calls]
    finally:
        pool.release(lease)


async def hooks_after_release(pool: ExecutorPool, ran: list[str]) -> list[str]:
    """What the hook did by the time the same (LIFO) worker runs the next lease's call:
    a hook queued at release runs before it."""
    lease = pool.acquire()
    await asyncio.wrap_future(lease.submit(int))
    seen = list(ran)
    lease.closed = True  # end it without the release under test
    if lease.worker is not None:
        pool._put_back(lease.worker)
    return seen


@pytest.fixture
def pool_and_hook() -> Any:
    ran: list[str] = []
    pool = ExecutorPool(4, on_release=lambda: ran.append(threading.current_thread().name))
    yield pool, ran
    pool.close()


async def test_a_worker_settled_in_its_last_call_runs_the_release_hook_once_there(
    pool_and_hook: Any,
) -> None:
    pool, ran = pool_and_hook
    (name,) = await run(pool, settling)
    assert ran == [name]  # in the call, on the worker
    assert await hooks_after_release(pool, ran) == [name]  # nothing queued at release


async def test_a_call_after_settling_gets_the_release_hook_queued_again(
    pool_and_hook: Any,
) -> None:
    pool, ran = pool_and_hook
    name, _ = await run(pool, settling, int)
    assert await hooks_after_release(pool, ran) == [name, name]


async def test_a_release_hook_that_raises_when_settling_is_logged_and_queued_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ran: list[int] = []

    def hook() -> None:
        ran.append(1)
        if len(ran) == 1:
            raise RuntimeError("reset failed")

    pool = ExecutorPool(4, on_release=hook)
    try:
        with caplog.at_level(logging.ERROR, logger="middleware_stack"):
            await run(pool, settling)
            await hooks_after_release(pool, [])
        assert len(ran) == 2
        assert "worker housekeeping failed" in caplog.text
    finally:
        pool.close()


def test_settle_here_does_nothing_off_a_pooled_worker() -> None:
    settle_here()  # the calling thread: no worker
    worker = WorkerExecutor()  # a worker with no pool (no hook)
    try:
        worker.submit(settle_here).result(5)
        assert not worker.settled()
    finally:
        worker.shutdown()


@needs_executor
async def test_a_one_hop_request_resets_its_connections_in_its_hop_not_in_another_wake_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = stack()
    pool = pooled(app)
    ran: list[str] = []
    queued: list[Any] = []
    monkeypatch.setattr(pool, "on_release", lambda: ran.append(threading.current_thread().name))
    original_after = threads.WorkerExecutor.after

    def after(self: WorkerExecutor, fn: Any) -> None:
        queued.append(fn)
        original_after(self, fn)

    monkeypatch.setattr(threads.WorkerExecutor, "after", after)
    await call(app, path="/sync/")  # the worker starts now, with the patched hook
    ran.clear()
    queued.clear()
    responses = [await call(app, path="/sync/") for _ in range(3)]
    assert [r.status for r in responses] == [200] * 3
    views = [name for what, name in EVENTS if what == "view"][-3:]
    assert ran == views  # once per request, on the thread that ran its view
    assert queued == []


@needs_executor
async def test_a_streaming_response_still_gets_the_release_hook_after_its_close(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Closed in a second hop after it is sent: the hook is queued at release, as before."""
    app = stack()
    pool = pooled(app)
    ran: list[str] = []
    await call(app, path="/astream/")
    monkeypatch.setattr(pool, "on_release", lambda: ran.append("reset"))
    for worker in pool._idle:
        monkeypatch.setattr(worker, "on_release", pool.on_release)
    assert (await call(app, path="/astream/")).status == 200
    await wait_until(lambda: bool(ran))  # the queued hook runs on the worker
    assert ran == ["reset"]


async def _held_request(app: Any, path: str, until: Any) -> tuple[asyncio.Task[None], list[bool]]:
    """Start a request whose response is held at its start until ``until()`` (bounded);
    the list gets whether that came true while it was held."""
    receive, _ = client()
    seen: list[bool] = []

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            seen.append(await wait_until(until))

    return asyncio.ensure_future(app(http_scope(path=path), receive, send)), seen


def _when(what: str) -> list[int]:
    return [i for i, (w, _) in enumerate(EVENTS) if w == what]


@needs_executor
@pytest.mark.usefixtures("signals")
async def test_at_the_bound_a_settled_request_hands_its_thread_on_before_its_response_is_sent() -> (
    None
):
    app = stack(ASGI_THREAD_POOL_MAX=1)
    pool = pooled(app)
    held, seen = await _held_request(app, "/block/", lambda: bool(_when("view")))
    assert await wait_until(ENTERED.is_set)
    waiting = asyncio.ensure_future(call(app, path="/sync/"))
    assert await wait_until(lambda: pool.waiting == 1)  # at the bound, behind /block/
    GATE.set()
    response = await waiting
    await held
    assert seen == [True]  # /sync/ ran while /block/'s response was still held
    assert response.status == 200
    first_done, second_view = _when("request_finished")[0], _when("view")[0]
    assert first_done < second_view  # the first request finished before the next began
    threads = {name for what, name in EVENTS if what in ("blocking view returned", "view")}
    assert len(threads) == 1  # the same worker, handed on
    assert pool.lent == 0 and pool.live == 1


@needs_executor
@pytest.mark.usefixtures("signals")
@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")
async def test_at_the_bound_a_streaming_request_keeps_its_thread_until_it_is_closed() -> None:
    app = stack(ASGI_THREAD_POOL_MAX=1)
    pool = pooled(app)
    first = asyncio.ensure_future(call(app, path="/block-stream/"))
    assert await wait_until(ENTERED.is_set)
    waiting = asyncio.ensure_future(call(app, path="/sync/"))
    assert await wait_until(lambda: pool.waiting == 1)
    GATE.set()
    assert (await first).status == 200 and (await waiting).status == 200
    # The stream was consumed and closed (request_finished) before the next view ran.
    assert _when("request_finished")[0] < _when("view")[0]
    assert len({name for _, name in EVENTS}) == 1


@needs_executor
async def test_without_waiters_a_settled_worker_is_idle_again_before_the_response_is_sent() -> None:
    app = stack()
    pool = pooled(app)
    await call(app, path="/sync/")  # warm: one thread, idle
    held, seen = await _held_request(app, "/sync/", lambda: pool.idle == 1)
    await held
    assert seen == [True]  # back among the idle ones while the response was held
    assert pool.lent == 0
