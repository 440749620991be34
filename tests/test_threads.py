"""Thread reuse in the boundary: pooling, safety rules, fallbacks (in-process)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.asgi import get_asgi_application
from django.core.signals import request_finished, request_started
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.test import override_settings
from django.urls import path

from middleware_stack import Stack, build_stack, threads
from middleware_stack import boundary as boundary_module
from middleware_stack.types import Message
from tests.asgi import call, http_scope

needs_executor = pytest.mark.skipif(
    not threads.EXECUTOR_SUPPORTED,
    reason="thread reuse needs asgiref>=3.13 (ThreadSensitiveContext(executor=...))",
)

GATE = threading.Event()
ENTERED = threading.Event()
LEFT_RUNNING: list[Any] = []


def blocking_view(request: HttpRequest) -> HttpResponse:
    ENTERED.set()
    GATE.wait(10)
    return HttpResponse(threading.current_thread().name)


def name_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(threading.current_thread().name)


async def spawning_view(request: HttpRequest) -> HttpResponse:
    async def later() -> None:
        await asyncio.sleep(0.05)
        try:
            await sync_to_async(threading.current_thread)()
        except RuntimeError as exc:
            LEFT_RUNNING.append(exc)
        else:
            LEFT_RUNNING.append("ran")

    LEFT_RUNNING.append(asyncio.ensure_future(later()))
    return HttpResponse(b"spawned")


def sync_iterator_view(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(iter([b"x", b"y"]))


async def slow_async_view(request: HttpRequest) -> HttpResponse:
    try:
        await asyncio.sleep(5)
    except asyncio.CancelledError:
        LEFT_RUNNING.append("view cancelled")
        raise
    return HttpResponse(b"late")  # pragma: no cover


def leave_thread_state(request: HttpRequest) -> HttpResponse:
    """Per-request state Django keeps in asgiref Locals, set and never unset."""
    from django.urls import set_script_prefix, set_urlconf
    from django.utils import timezone, translation

    translation.activate("fr")
    timezone.activate("Asia/Tokyo")
    set_urlconf("tests.urls")
    set_script_prefix("/leaked/")
    return HttpResponse(threading.current_thread().name)


def read_thread_state(request: HttpRequest) -> JsonResponse:
    from django.urls import get_script_prefix, get_urlconf
    from django.utils import timezone, translation

    return JsonResponse(
        {
            "thread": threading.current_thread().name,
            "language": translation.get_language(),
            "timezone": timezone.get_current_timezone_name(),
            "urlconf": get_urlconf(),
            "script_prefix": get_script_prefix(),
        }
    )


urlpatterns = [
    path("leave-state/", leave_thread_state),
    path("read-state/", read_thread_state),
    path("block/", blocking_view),
    path("name/", name_view),
    path("spawn/", spawning_view),
    path("sync-iter/", sync_iterator_view),
    path("slow/", slow_async_view),
]


@pytest.fixture(autouse=True)
def urls() -> Iterator[None]:
    with override_settings(ROOT_URLCONF="tests.test_threads"):
        yield


def stack(**settings: Any) -> Stack:
    with override_settings(**settings):
        return build_stack(get_asgi_application(), [], checks="off")


class ThreadStarts:
    """Counts every OS thread started in the process while active."""

    def __init__(self) -> None:
        self.count = 0
        self._original = threading.Thread.start

    def __enter__(self) -> ThreadStarts:
        counter = self

        def counting_start(thread: threading.Thread) -> None:
            counter.count += 1
            counter._original(thread)

        threading.Thread.start = counting_start  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        threading.Thread.start = self._original  # type: ignore[method-assign]


@needs_executor
async def test_steady_state_starts_no_threads_per_request() -> None:
    app = stack()
    for _ in range(3):  # warm up: the pool's first thread, Django's caches
        await call(app, path="/name/")
    with ThreadStarts() as starts:
        for _ in range(50):
            assert (await call(app, path="/name/")).status == 200
    assert starts.count == 0


async def test_bare_django_starts_threads_per_request_for_comparison() -> None:
    django = get_asgi_application()
    await call(django, path="/name/")
    with ThreadStarts() as starts:
        for _ in range(10):
            await call(django, path="/name/")
    assert starts.count >= 10


@needs_executor
async def test_sequential_requests_reuse_one_thread() -> None:
    app = stack()
    names = {(await call(app, path="/name/")).text for _ in range(20)}
    assert len(names) == 1 and names.pop().startswith("middleware_stack-worker-")


@needs_executor
async def test_pool_grows_with_concurrency_and_trims_to_the_idle_bound_after_the_timeout() -> None:
    app = stack(ASGI_THREAD_POOL_IDLE=2, ASGI_THREAD_POOL_IDLE_TIMEOUT=0.3)
    pool = app.boundary.pool
    assert pool is not None
    GATE.clear()
    tasks = [asyncio.ensure_future(call(app, path="/block/")) for _ in range(6)]
    while pool.live < 6:  # every request got its own thread: none waits for another's
        await asyncio.sleep(0.01)
    GATE.set()
    names = {r.text for r in await asyncio.gather(*tasks)}
    assert len(names) == 6
    # Above the bound, but not idle for the timeout yet: kept, so a burst that comes
    # back finds its threads (no thread started per request under steady load).
    assert pool.live == 6 and pool.idle == 6
    again = {(await call(app, path="/name/")).text for _ in range(3)}
    assert again <= names and pool.threads_started == 6
    for _ in range(300):
        if pool.live == 2:
            break
        await asyncio.sleep(0.01)
    assert pool.live == 2 and pool.idle == 2
    retired = [t for t in threading.enumerate() if t.name in names]
    for _ in range(200):
        retired = [t for t in threading.enumerate() if t.name in names]
        if len(retired) <= 2:
            break
        await asyncio.sleep(0.01)
    assert len(retired) == 2  # the 4 extra worker threads exited


@needs_executor
async def test_steady_concurrency_above_the_idle_bound_starts_no_threads() -> None:
    # 12 requests in flight at a time, bound 2: before the idle timeout existed, every
    # release above the bound retired a thread and the next request started one.
    app = stack(ASGI_THREAD_POOL_IDLE=2)
    pool = app.boundary.pool
    assert pool is not None

    async def wave() -> None:
        GATE.clear()
        tasks = [asyncio.ensure_future(call(app, path="/block/")) for _ in range(12)]
        while pool.live - pool.idle < 12:
            await asyncio.sleep(0.005)
        GATE.set()
        await asyncio.gather(*tasks)

    await wave()
    started = pool.threads_started
    for _ in range(5):
        await wave()
    assert pool.threads_started == started == 12


@needs_executor
async def test_cancelled_request_does_not_hand_its_busy_thread_to_the_next() -> None:
    app = stack(ASGI_THREAD_POOL_IDLE=4)
    pool = app.boundary.pool
    assert pool is not None
    first = (await call(app, path="/name/")).text
    GATE.clear()
    ENTERED.clear()
    task = asyncio.ensure_future(call(app, path="/block/"))
    while not ENTERED.is_set():
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The sync view still runs on `first`'s thread; the next request must not get it.
    assert pool.idle == 0
    other = (await call(app, path="/name/")).text
    assert other != first
    GATE.set()
    for _ in range(200):
        if pool.idle == 2:
            break
        await asyncio.sleep(0.01)
    assert pool.idle == 2  # back in the pool once its call finished


class Lifespan:
    """A server's side of one lifespan scope, driven step by step."""

    def __init__(self, app: Stack) -> None:
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.sent: asyncio.Queue[Message] = asyncio.Queue()
        self.task = asyncio.ensure_future(app({"type": "lifespan"}, self.inbox.get, self.sent.put))

    async def step(self, kind: str) -> Message:
        await self.inbox.put({"type": f"lifespan.{kind}"})
        return await asyncio.wait_for(self.sent.get(), 10)


@needs_executor
async def test_lifespan_shutdown_waits_for_a_cancelled_requests_thread_to_come_back() -> None:
    app = stack()
    pool = app.boundary.pool
    assert pool is not None
    server = Lifespan(app)
    assert (await server.step("startup"))["type"] == "lifespan.startup.complete"
    GATE.clear()
    ENTERED.clear()
    request = asyncio.ensure_future(call(app, path="/block/"))
    while not ENTERED.is_set():
        await asyncio.sleep(0.01)
    request.cancel()  # the server's graceful shutdown timed out
    with pytest.raises(asyncio.CancelledError):
        await request
    assert pool.lent == 1  # the sync view still runs on the request's thread
    await server.inbox.put({"type": "lifespan.shutdown"})
    for _ in range(20):
        await asyncio.sleep(0)
    assert server.sent.empty(), "shutdown completed while a request still held its thread"
    GATE.set()
    done = await asyncio.wait_for(server.sent.get(), 10)
    assert done["type"] == "lifespan.shutdown.complete"
    assert pool.lent == 0 and pool.live == 0  # given back, then retired with the pool


async def test_lifespan_shutdown_waits_for_cancelled_requests_to_unwind() -> None:
    LEFT_RUNNING.clear()
    app = stack()
    server = Lifespan(app)
    assert (await server.step("startup"))["type"] == "lifespan.startup.complete"
    requests = [asyncio.ensure_future(call(app, path="/slow/")) for _ in range(3)]
    for _ in range(500):
        if app.boundary.inflight == 3:
            break
        await asyncio.sleep(0.01)
    assert app.boundary.inflight == 3
    # A server cancels the requests left at the end of its graceful timeout and sends
    # lifespan.shutdown in the same loop turn (uvicorn does); Django 6.1's handler then
    # needs several turns to unwind its task group.
    for r in requests:
        r.cancel()
    done = await server.step("shutdown")
    assert done["type"] == "lifespan.shutdown.complete"
    assert all(r.done() for r in requests)
    assert app.boundary.inflight == 0
    if app.boundary.pool is not None:
        assert app.boundary.pool.lent == 0


def test_lifespan_shutdown_gives_up_on_requests_that_never_end(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(boundary_module, "DRAIN_TIMEOUT", 0.05)

    async def run() -> None:
        app = stack()
        server = Lifespan(app)
        assert (await server.step("startup"))["type"] == "lifespan.startup.complete"
        request = asyncio.ensure_future(call(app, path="/slow/"))
        for _ in range(500):
            if app.boundary.inflight:
                break
            await asyncio.sleep(0.01)
        # Not cancelled: a server that sends shutdown with a request still running.
        assert (await server.step("shutdown"))["type"] == "lifespan.shutdown.complete"
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request

    with caplog.at_level(logging.WARNING, logger="middleware_stack"):
        asyncio.run(run())
    assert "1 request(s) still running after 0.05s" in caplog.text


@needs_executor
async def test_task_left_running_cannot_use_a_pooled_thread() -> None:
    LEFT_RUNNING.clear()
    app = stack()
    assert (await call(app, path="/spawn/")).text == "spawned"
    await LEFT_RUNNING[0]
    assert isinstance(LEFT_RUNNING[1], RuntimeError)


async def test_sync_middleware_and_view_share_the_request_thread() -> None:
    with override_settings(MIDDLEWARE=["tests.pg_site.views.sync_only_middleware"]):
        app = build_stack(get_asgi_application(), [], checks="off")
    seen: list[str] = []

    def view_thread(request: HttpRequest) -> HttpResponse:
        seen.append(request.middleware_thread)  # type: ignore[attr-defined]
        return HttpResponse(threading.current_thread().name)

    urlpatterns.append(path("mw/", view_thread))
    try:
        response = await call(app, path="/mw/")
    finally:
        urlpatterns.pop()
    assert seen == [response.text]


async def test_signals_fire_once_per_request() -> None:
    counts = {"started": 0, "finished": 0}

    def started(**kwargs: Any) -> None:
        counts["started"] += 1

    def finished(**kwargs: Any) -> None:
        counts["finished"] += 1

    request_started.connect(started)
    request_finished.connect(finished)
    try:
        app = stack()
        for p in ["/name/", "/name/", "/missing/"]:
            await call(app, path=p)
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)
    assert counts == {"started": 3, "finished": 3}


async def test_streaming_sync_iterator_warning_is_still_issued() -> None:
    app = stack()
    with pytest.warns(Warning, match="StreamingHttpResponse must consume synchronous iterators"):
        response = await call(app, path="/sync-iter/")
    assert response.body == b"xy"


async def test_client_disconnect_still_cancels_the_view() -> None:
    LEFT_RUNNING.clear()
    app = stack()
    scope = http_scope("GET", "/slow/")
    sent: list[Message] = []
    messages = [{"type": "http.request", "body": b""}, {"type": "http.disconnect"}]

    async def receive() -> Message:
        if len(messages) == 1:
            await asyncio.sleep(0.05)
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await asyncio.wait_for(app(scope, receive, send), 5)
    assert LEFT_RUNNING == ["view cancelled"]
    assert sent == []


async def test_request_scope_reaches_the_view_unchanged() -> None:
    seen: list[Any] = []

    async def scope_view(request: HttpRequest) -> HttpResponse:
        seen.append(request.scope)
        return HttpResponse(b"ok")

    urlpatterns.append(path("scope/", scope_view))
    try:
        scope = http_scope("GET", "/scope/", [("x-a", "1")])
        await call(stack(), scope=scope)
    finally:
        urlpatterns.pop()
    assert seen[0] is scope


async def test_thread_reuse_can_be_turned_off() -> None:
    app = stack(ASGI_THREAD_REUSE=False)
    assert app.boundary.pool is None
    names = {(await call(app, path="/name/")).text for _ in range(5)}
    assert not any(n.startswith("middleware_stack-worker") for n in names)
    assert "per request" in app.describe()


async def test_older_asgiref_falls_back_with_one_debug_log(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(threads, "EXECUTOR_SUPPORTED", False)
    monkeypatch.setattr(boundary_module, "_warned_old_asgiref", False)
    with caplog.at_level(logging.DEBUG, "middleware_stack"):
        first = stack()
        second = stack()
    assert first.boundary.pool is None and second.boundary.pool is None
    notes = [r for r in caplog.records if "has no ThreadSensitiveContext(executor" in r.message]
    assert len(notes) == 1 and notes[0].levelno == logging.DEBUG
    response = await call(first, path="/name/")
    assert response.status == 200 and not response.text.startswith("middleware_stack-worker")


def test_executor_runs_calls_in_order_on_one_thread_and_reports_idle() -> None:
    ex = threads.WorkerExecutor()
    try:
        results = [ex.submit(lambda i=i: (i, threading.current_thread().name)) for i in range(5)]
        values = [f.result(5) for f in results]
        assert [v[0] for v in values] == list(range(5))
        assert len({v[1] for v in values}) == 1
        assert not ex.busy and ex.when_idle(lambda: None) is True
        with pytest.raises(ZeroDivisionError):
            ex.submit(lambda: 1 / 0).result(5)
    finally:
        ex.shutdown()
    assert not ex.thread.is_alive()
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(lambda: None)


def test_pool_closes_idle_executors_at_shutdown() -> None:
    retired: list[str] = []
    pool = threads.ExecutorPool(
        4, on_retire=lambda: retired.append(threading.current_thread().name)
    )

    async def cycle() -> None:
        leases = [pool.acquire() for _ in range(3)]
        for lease in leases:  # a lease takes its thread at its first call
            await asyncio.wrap_future(lease.submit(lambda: None))
        for lease in leases:
            pool.release(lease)

    asyncio.run(cycle())
    assert pool.idle == 3
    pending = pool.close()
    assert pool.idle == 0 and pool.live == 0
    for done in pending:
        done.result(5)  # shutdown can wait for these before the process exits
    assert len(retired) == 3  # DB connections closed on each worker's own thread


def test_an_executor_busy_when_the_pool_closes_is_retired_when_released() -> None:
    retired: list[str] = []
    pool = threads.ExecutorPool(4, on_retire=lambda: retired.append("closed"))
    gate = threading.Event()

    async def request_outliving_shutdown() -> None:
        lease = pool.acquire()
        running = lease.submit(gate.wait, 5)
        worker = lease.worker
        assert worker is not None
        assert pool.close() == []  # nothing idle yet
        pool.release(lease)  # still busy: handed back once its call returns
        gate.set()
        await asyncio.wrap_future(running)
        for _ in range(200):  # the worker hands it back through the loop
            if pool.live == 0:
                break
            await asyncio.sleep(0.01)
        worker.thread.join(5)
        assert not worker.thread.is_alive()

    asyncio.run(request_outliving_shutdown())
    assert pool.idle == 0 and pool.live == 0
    assert retired == ["closed"]


def test_no_warnings_from_the_pool_on_normal_use() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        asyncio.run(call(stack(), path="/name/"))


async def test_installed_asgiref_decides_whether_threads_are_reused() -> None:
    import asgiref

    version = tuple(int(p) for p in asgiref.__version__.split(".")[:2])
    app = stack()
    assert threads.EXECUTOR_SUPPORTED is (version >= (3, 13))
    assert (app.boundary.pool is not None) is threads.EXECUTOR_SUPPORTED
    # Either way requests work; on old asgiref Django starts its own threads.
    response = await call(app, path="/name/")
    assert response.status == 200
    assert response.text.startswith("middleware_stack-worker") is threads.EXECUTOR_SUPPORTED


@needs_executor
async def test_locale_timezone_and_urlconf_set_by_a_request_do_not_reach_the_next_on_its_thread() -> (
    None
):
    # Django keeps these in asgiref Locals (context variables), not in the thread: each
    # request's sync code runs in a copy of that request's context. Pinned here because
    # a pooled thread serves request after request.
    async def reads(app: Stack) -> list[dict[str, Any]]:
        out = []
        for p in ["/read-state/", "/leave-state/", "/read-state/", "/read-state/"]:
            # Each request in a task of its own, as a server runs it: a context variable
            # a view sets may flow back into its caller's context (asgiref copies it
            # back), which is the request task's, never the next request's.
            response = await asyncio.create_task(call(app, path=p))
            assert response.status == 200
            if p == "/read-state/":
                out.append(json.loads(response.text))
        return out

    pooled = await reads(stack(ASGI_THREAD_POOL_MAX=1))
    stock = await reads(stack(ASGI_THREAD_REUSE=False))
    assert len({r.pop("thread") for r in pooled}) == 1  # one thread served them all
    for r in stock:
        r.pop("thread")
    assert pooled == stock == [pooled[0]] * 3


@needs_executor
async def test_at_the_bound_requests_wait_for_a_free_thread_and_all_complete() -> None:
    app = stack(ASGI_THREAD_POOL_MAX=2)
    pool = app.boundary.pool
    assert pool is not None and pool.max_threads == 2
    pool.hops = None  # the bound alone (tests/test_hopqueue.py: waiting for a busy hop)
    GATE.clear()
    tasks = [asyncio.ensure_future(call(app, path="/block/")) for _ in range(6)]
    for _ in range(500):  # two run their view, four wait: no third thread is started
        if pool.live == 2 and pool.waiting == 4:
            break
        await asyncio.sleep(0.01)
    assert (pool.live, pool.waiting) == (2, 4)
    GATE.set()
    responses = await asyncio.wait_for(asyncio.gather(*tasks), 30)
    assert all(r.status == 200 for r in responses)
    assert len({r.text for r in responses}) == 2  # the six ran on the two threads
    assert pool.threads_started == 2 and pool.waited == 4 and pool.waiting == 0


@needs_executor
async def test_a_request_cancelled_while_waiting_for_a_thread_leaves_the_queue() -> None:
    app = stack(ASGI_THREAD_POOL_MAX=1)
    pool = app.boundary.pool
    assert pool is not None
    GATE.clear()
    ENTERED.clear()
    holder = asyncio.ensure_future(call(app, path="/block/"))
    while not ENTERED.is_set():
        await asyncio.sleep(0.01)
    waiter = asyncio.ensure_future(call(app, path="/name/"))
    for _ in range(500):
        if pool.waiting == 1:
            break
        await asyncio.sleep(0.01)
    assert pool.waiting == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert pool.waiting == 0
    GATE.set()
    assert (await holder).status == 200
    assert (await call(app, path="/name/")).status == 200
    assert pool.threads_started == 1 and pool.live == 1 and pool.idle == 1


@needs_executor
async def test_a_request_still_sending_its_body_holds_no_thread() -> None:
    app = stack(ASGI_THREAD_POOL_MAX=1)
    pool = app.boundary.pool
    assert pool is not None
    more = asyncio.Event()

    def slow_body() -> Any:
        parts = [{"type": "http.request", "body": b"a" * 10, "more_body": True}]
        parts.append({"type": "http.request", "body": b"b" * 10, "more_body": False})

        async def receive() -> Message:
            if parts:
                if len(parts) == 1:  # the rest of the body comes when the client sends it
                    await more.wait()
                return parts.pop(0)
            await asyncio.Event().wait()  # no disconnect: the response ends the request
            raise AssertionError("unreachable")

        return receive

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    slow = [
        asyncio.ensure_future(app(http_scope("POST", "/name/"), slow_body(), send))
        for _ in range(20)
    ]
    for _ in range(3):  # let them start: each is now inside Django, reading its body
        await asyncio.sleep(0)
    for _ in range(3):
        assert (await call(app, path="/name/")).status == 200  # the one thread is free
    assert pool.threads_started == 1 and pool.waiting == 0
    more.set()
    await asyncio.wait_for(asyncio.gather(*slow), 30)
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [200] * 20


async def ws_sync_calls(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A websocket app running sync code per message, as a Channels consumer does."""
    names: list[str] = []
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif message["type"] == "websocket.receive":
            names.append(await sync_to_async(lambda: threading.current_thread().name)())
            await send({"type": "websocket.send", "text": names[-1]})
        else:
            return


@needs_executor
async def test_an_open_websocket_holds_a_thread_only_while_its_sync_code_runs() -> None:
    with override_settings(ASGI_THREAD_POOL_MAX=1):
        app = build_stack(get_asgi_application(), [], checks="off", websocket=ws_sync_calls)
    pool = app.boundary.pool
    assert pool is not None
    inboxes: list[asyncio.Queue[Message]] = [asyncio.Queue() for _ in range(5)]
    outboxes: list[asyncio.Queue[Message]] = [asyncio.Queue() for _ in range(5)]
    scope = {"type": "websocket", "path": "/ws/", "headers": [], "subprotocols": []}
    sockets = [
        asyncio.ensure_future(app(dict(scope), inbox.get, outbox.put))
        for inbox, outbox in zip(inboxes, outboxes, strict=True)
    ]
    for inbox, outbox in zip(inboxes, outboxes, strict=True):
        await inbox.put({"type": "websocket.connect"})
        assert (await outbox.get())["type"] == "websocket.accept"
    for _ in range(2):  # five open sockets, one thread: each message's call gets it in turn
        for inbox, outbox in zip(inboxes, outboxes, strict=True):
            await inbox.put({"type": "websocket.receive", "text": "x"})
            reply = await asyncio.wait_for(outbox.get(), 10)
            assert reply["text"].startswith("middleware_stack-worker-")
    for _ in range(200):  # between messages the thread is back in the pool
        if pool.idle == 1:
            break
        await asyncio.sleep(0.01)
    assert pool.idle == 1 and pool.live == 1 and pool.threads_started == 1
    assert (await call(app, path="/name/")).status == 200  # HTTP is not starved by them
    for inbox in inboxes:
        await inbox.put({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(asyncio.gather(*sockets), 10)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("clean", None),
        ("autocommit", "autocommit was left switched off"),
        ("execute_wrapper", "an execute_wrapper() was left installed"),
        ("atomic", "it was left inside transaction.atomic()"),
        ("begin", "a transaction is left open on the connection"),
    ],
)
def test_release_check_resets_a_dirty_connection_and_keeps_a_clean_one(
    how: str, reason: str | None
) -> None:
    from django.db import connections, transaction

    from middleware_stack.dbstate import dirty_reason, reset_dirty_connections

    seen: dict[str, Any] = {}

    def worker() -> None:  # a thread of its own, as a pooled worker is
        conn = connections["default"]
        conn.ensure_connection()
        if how == "autocommit":
            conn.set_autocommit(False)
        elif how == "execute_wrapper":
            conn.execute_wrappers.append(lambda execute, *args: execute(*args[:3]))
        elif how == "atomic":
            transaction.atomic().__enter__()
        elif how == "begin":
            with conn.cursor() as cursor:
                cursor.execute("BEGIN")
        seen["reason"] = dirty_reason(conn)
        reset_dirty_connections()
        seen["same"] = connections["default"] is conn
        seen["after"] = dirty_reason(connections["default"])
        connections["default"].close()

    t = threading.Thread(target=worker)
    t.start()
    t.join(10)
    assert seen["reason"] == reason
    assert seen["same"] is (reason is None)  # a dirty one is replaced by a fresh wrapper
    assert seen["after"] is None


def test_a_request_waiting_at_the_bound_when_the_pool_closes_still_gets_a_thread() -> None:
    # Lifespan shutdown closes the pool while requests are in flight: a busy worker is
    # handed to the request waiting for it, and retired only once nobody waits.
    retired: list[str] = []
    pool = threads.ExecutorPool(4, on_retire=lambda: retired.append("closed"), max_threads=1)
    gate = threading.Event()

    async def requests_outliving_shutdown() -> None:
        first, second = pool.acquire(), pool.acquire()
        running = first.submit(gate.wait, 5)
        queued = second.submit(threading.current_thread)
        assert pool.waiting == 1
        assert pool.close() == []
        pool.release(first)
        gate.set()
        await asyncio.wrap_future(running)
        thread = await asyncio.wait_for(asyncio.wrap_future(queued), 5)
        assert thread.name.startswith("middleware_stack-worker-")
        pool.release(second)
        for _ in range(200):  # on_retire runs on the worker after live drops
            if pool.live == 0 and retired:
                break
            await asyncio.sleep(0.01)

    asyncio.run(requests_outliving_shutdown())
    assert pool.live == 0 and pool.threads_started == 1 and retired == ["closed"]
