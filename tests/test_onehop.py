"""The one-hop request path: one thread hand-over per sync request, Django's semantics
kept (in-process, sqlite; PostgreSQL and a real server in tests/test_onehop_pg.py)."""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.asgi import get_asgi_application
from django.core.handlers.asgi import ASGIHandler
from django.core.signals import got_request_exception, request_finished, request_started
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseServerError,
    StreamingHttpResponse,
)
from django.test import override_settings
from django.urls import path
from django.utils.deprecation import MiddlewareMixin

from benchmarks.driver import count_handovers
from middleware_stack import Stack, build_stack, threads
from middleware_stack.exceptions import StackConfigurationError
from middleware_stack.types import Message, Receive, Scope, Send
from tests.asgi import call, http_scope

needs_executor = pytest.mark.skipif(
    not threads.EXECUTOR_SUPPORTED,
    reason="thread reuse needs asgiref>=3.13 (ThreadSensitiveContext(executor=...))",
)

#: What ``django-admin startproject`` writes (as benchmarks/django_settings.py).
STARTPROJECT = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
RECORDER = "tests.test_onehop.RecordingMiddleware"

EVENTS: list[tuple[str, str]] = []  # (what, thread name)
GATE = threading.Event()
ENTERED = threading.Event()


#: Django warns when it serves a sync iterator under ASGI; these tests serve one on purpose.
SYNC_ITERATOR_WARNING = pytest.mark.filterwarnings(
    "ignore:StreamingHttpResponse must consume synchronous iterators:Warning"
)


def note(what: str) -> None:
    EVENTS.append((what, threading.current_thread().name))


class RecordingMiddleware(MiddlewareMixin):
    """A classic sync-and-async MiddlewareMixin; records where each hook ran."""

    def process_request(self, request: HttpRequest) -> None:
        note("process_request")

    def process_view(self, request: HttpRequest, *args: Any) -> None:
        note("process_view")

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        note("process_response")
        return response


def async_only_middleware(get_response: Callable[..., Any]) -> Callable[..., Any]:
    async def middleware(request: HttpRequest) -> Any:
        return await get_response(request)

    return middleware


async_only_middleware.sync_capable = False  # type: ignore[attr-defined]
async_only_middleware.async_capable = True  # type: ignore[attr-defined]


def sync_view(request: HttpRequest) -> HttpResponse:
    note("view")
    return HttpResponse(b"sync")


async def async_view(request: HttpRequest) -> HttpResponse:
    note("async view")
    worker = await sync_to_async(threading.current_thread)()
    return HttpResponse(worker.name)


async def async_stream_view(request: HttpRequest) -> StreamingHttpResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"a", b"b"):
            await asyncio.sleep(0)
            yield part

    return StreamingHttpResponse(chunks())


def sync_stream_view(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(iter([b"x", b"y"]))


def file_view(request: HttpRequest) -> FileResponse:
    handle = tempfile.TemporaryFile()  # noqa: SIM115 (FileResponse closes it)
    handle.write(b"file body")
    handle.seek(0)
    return FileResponse(handle)


def boom_view(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom from a sync view")


def blocking_view(request: HttpRequest) -> HttpResponse:
    ENTERED.set()
    GATE.wait(10)
    note("blocking view returned")
    return HttpResponse(b"late")


def blocking_stream_view(request: HttpRequest) -> StreamingHttpResponse:
    ENTERED.set()
    GATE.wait(10)
    return StreamingHttpResponse(iter([b"late"]))


async def slow_async_view(request: HttpRequest) -> HttpResponse:
    ENTERED.set()
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        note("async view cancelled")
        raise
    return HttpResponse(b"late")  # pragma: no cover


def custom_500(request: HttpRequest) -> HttpResponse:
    return HttpResponseServerError(b"custom 500")


urlpatterns = [
    path("sync/", sync_view),
    path("async/", async_view),
    path("astream/", async_stream_view),
    path("stream/", sync_stream_view),
    path("file/", file_view),
    path("boom/", boom_view),
    path("block/", blocking_view),
    path("block-stream/", blocking_stream_view),
    path("slow-async/", slow_async_view),
]
handler500 = custom_500


@pytest.fixture(autouse=True)
def urls() -> Iterator[None]:
    EVENTS.clear()
    GATE.clear()
    ENTERED.clear()
    with override_settings(ROOT_URLCONF="tests.test_onehop"):
        yield
    GATE.set()


@pytest.fixture
def signals() -> Iterator[dict[str, int]]:
    counts = {"started": 0, "finished": 0}

    def started(**kwargs: Any) -> None:
        counts["started"] += 1
        note("request_started")

    def finished(**kwargs: Any) -> None:
        counts["finished"] += 1
        note("request_finished")

    request_started.connect(started)
    request_finished.connect(finished)
    yield counts
    request_started.disconnect(started)
    request_finished.disconnect(finished)


def stack(middleware: list[str] | None = None, **settings: Any) -> Stack:
    with override_settings(MIDDLEWARE=[RECORDER] if middleware is None else middleware, **settings):
        return build_stack(get_asgi_application(), [], checks="off")


def client(*, leave: asyncio.Event | None = None) -> tuple[Receive, list[Message]]:
    """A ``receive`` that gives an empty body, then waits for ``leave`` (forever if None)
    before it says ``http.disconnect``; and the list of messages sent."""
    calls = 0

    async def receive() -> Message:
        nonlocal calls
        calls += 1
        if calls == 1:
            return {"type": "http.request", "body": b""}
        await (leave or asyncio.Event()).wait()
        return {"type": "http.disconnect"}

    return receive, []


async def wait_until(predicate: Callable[[], bool]) -> bool:
    """Poll (bounded) for a condition another thread makes true."""
    for _ in range(1000):
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return predicate()


# -- hand-overs ---------------------------------------------------------------------------


@needs_executor
async def test_a_sync_request_is_one_hand_over_with_startproject_middleware() -> None:
    app = stack(STARTPROJECT)
    await call(app, path="/sync/")  # warm: first-request imports
    with count_handovers() as counts:
        response = await call(app, path="/sync/")
    assert response.status == 200
    assert counts == {"Lease": 1}
    off = stack(STARTPROJECT, ASGI_ONE_HOP=False)
    with count_handovers() as counts:
        assert (await call(off, path="/sync/")).status == 200
    assert counts["Lease"] >= 10  # Django's own path: one per sync hook


@SYNC_ITERATOR_WARNING
@needs_executor
@pytest.mark.parametrize(
    ("url", "hops"),
    [
        ("/async/", {"Lease": 1, "CurrentThreadExecutor": 1}),
        ("/astream/", {"Lease": 2}),
        ("/stream/", {"Lease": 3}),
        ("/file/", {"Lease": 3}),
    ],
    ids=["async view", "async iterator", "sync iterator", "FileResponse"],
)
async def test_an_async_view_and_streaming_responses_cost_the_documented_hand_overs(
    url: str, hops: dict[str, int]
) -> None:
    """The async view: the hop, and its sync_to_async back to the worker waiting for it
    (asgiref's CurrentThreadExecutor). A streaming
    response is closed in a second hop after it is sent; a sync iterator is consumed in
    a thread by Django's send_response, a third."""
    app = stack()
    await call(app, path=url)
    with count_handovers() as counts:
        response = await call(app, path=url)
    assert response.status == 200
    assert counts == hops


# -- threads --------------------------------------------------------------------------------


@needs_executor
async def test_every_sync_part_of_a_request_runs_on_one_pooled_thread(
    signals: dict[str, int],
) -> None:
    app = stack()
    assert (await call(app, path="/sync/")).text == "sync"
    assert [what for what, _ in EVENTS] == [
        "request_started",
        "process_request",
        "process_view",
        "view",
        "process_response",
        "request_finished",
    ]
    names = {name for _, name in EVENTS}
    assert len(names) == 1
    assert names.pop().startswith("middleware_stack-worker-")


@needs_executor
async def test_an_async_view_runs_on_the_loop_and_its_sync_calls_on_the_request_thread() -> None:
    app = stack()
    response = await call(app, path="/async/")
    hooks = {name for what, name in EVENTS if what.startswith("process_")}
    assert [name for what, name in EVENTS if what == "async view"] == [
        threading.current_thread().name  # the loop's thread
    ]
    assert hooks == {response.text}  # sync_to_async in the view: the middleware's thread


async def test_without_the_pool_a_request_still_runs_its_sync_parts_on_one_thread(
    signals: dict[str, int],
) -> None:
    """asgiref < 3.13 or ASGI_THREAD_REUSE = False: a ThreadSensitiveContext per request."""
    app = stack(ASGI_THREAD_REUSE=False)
    assert app.boundary.pool is None
    assert "requests one-hop" in app.describe()
    assert (await call(app, path="/sync/")).text == "sync"
    names = {name for _, name in EVENTS}
    assert len(names) == 1
    assert names != {threading.current_thread().name}
    assert signals == {"started": 1, "finished": 1}
    EVENTS.clear()
    response = await call(app, path="/async/")
    assert {name for what, name in EVENTS if what.startswith("process_")} == {response.text}


# -- signals --------------------------------------------------------------------------------


@SYNC_ITERATOR_WARNING
@pytest.mark.parametrize(
    ("url", "status", "extra"),
    [
        ("/sync/", 200, {}),
        ("/async/", 200, {}),
        ("/astream/", 200, {}),
        ("/stream/", 200, {}),
        ("/file/", 200, {}),
        ("/boom/", 500, {}),
        ("/missing/", 404, {}),
        ("/sync/", 400, {"query_string": b"\xff"}),  # create_request's UnicodeDecodeError
        ("/sync/", 400, {"headers": [("host", "bad host!")]}),  # DisallowedHost
    ],
    ids=["sync", "async", "async-stream", "sync-stream", "file", "500", "404", "bad-qs", "host"],
)
async def test_request_started_and_finished_fire_once_each(
    signals: dict[str, int], url: str, status: int, extra: dict[str, Any]
) -> None:
    assert (await call(stack(STARTPROJECT), path=url, **extra)).status == status
    assert signals == {"started": 1, "finished": 1}


async def test_request_finished_fires_before_a_plain_response_is_sent_and_after_a_stream(
    signals: dict[str, int],
) -> None:
    """The documented ordering: one hop closes a non-streaming response before the loop
    sends it (Django closes after); a streaming one is closed after it is sent."""
    app = stack()
    for url in ("/sync/", "/astream/"):
        EVENTS.clear()
        receive, _ = client()

        async def send(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                note("last body sent")

        await asyncio.wait_for(app(http_scope(path=url), receive, send), 10)
        order = [what for what, _ in EVENTS if what in ("request_finished", "last body sent")]
        if url == "/sync/":
            assert order == ["request_finished", "last body sent"]
        else:
            assert order == ["last body sent", "request_finished"]


async def test_a_disconnect_while_the_body_is_read_fires_no_signal(
    signals: dict[str, int],
) -> None:
    app = stack()
    sent: list[Message] = []
    messages = [
        {"type": "http.request", "body": b"x", "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await app(http_scope("POST", "/sync/"), receive, send)
    assert sent == []
    assert signals == {"started": 0, "finished": 0}  # as Django: nothing started


@needs_executor
@pytest.mark.parametrize("url", ["/block/", "/block-stream/"])
async def test_a_disconnect_during_a_slow_sync_view_finishes_the_request_exactly_once(
    signals: dict[str, int], url: str
) -> None:
    """A sync view cannot be cancelled: the request ends at the disconnect, and the
    abandoned hop closes what the view returns (request_finished once, on its thread)."""
    app = stack()
    disconnect = asyncio.Event()
    receive, sent = client(leave=disconnect)

    async def send(message: Message) -> None:
        sent.append(message)

    request = asyncio.ensure_future(app(http_scope(path=url), receive, send))
    assert await wait_until(ENTERED.is_set)
    disconnect.set()
    await asyncio.wait_for(request, 10)  # returns while the view still runs
    assert sent == []
    assert signals == {"started": 1, "finished": 0}
    GATE.set()
    assert await wait_until(lambda: signals["finished"] == 1)
    assert await wait_until(lambda: app.boundary.pool is not None and not app.boundary.pool.lent)
    assert signals == {"started": 1, "finished": 1}
    finished = [name for what, name in EVENTS if what == "request_finished"]
    returned = [name for what, name in EVENTS if what == "blocking view returned"]
    if url == "/block/":
        assert finished == returned  # on the view's thread


@needs_executor
async def test_a_disconnect_during_an_async_view_cancels_it_and_finishes_once(
    signals: dict[str, int],
) -> None:
    """As Django: the async view (on the loop, under the hop's async_to_sync) is
    cancelled, and request_finished fires once, on the request's thread."""
    app = stack()
    disconnect = asyncio.Event()
    receive, sent = client(leave=disconnect)

    async def send(message: Message) -> None:
        sent.append(message)

    request = asyncio.ensure_future(app(http_scope(path="/slow-async/"), receive, send))
    assert await wait_until(ENTERED.is_set)
    disconnect.set()
    await asyncio.wait_for(request, 10)
    assert sent == []
    assert "async view cancelled" in [what for what, _ in EVENTS]
    pool = app.boundary.pool
    assert pool is not None
    assert await wait_until(lambda: not pool.lent)
    assert signals == {"started": 1, "finished": 1}
    threads_seen = {name for what, name in EVENTS if what.startswith("request_")}
    assert len(threads_seen) == 1 and threads_seen.pop().startswith("middleware_stack-worker-")


async def test_a_disconnect_while_a_stream_is_sent_still_closes_it_once(
    signals: dict[str, int],
) -> None:
    app = stack()
    gone = asyncio.Event()
    receive, sent = client(leave=gone)

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body":
            gone.set()
            await asyncio.sleep(0.5)  # the client leaves while this part is sent

    await asyncio.wait_for(app(http_scope(path="/astream/"), receive, send), 10)
    assert signals == {"started": 1, "finished": 1}


# -- errors ---------------------------------------------------------------------------------


async def test_a_view_exception_becomes_djangos_500_and_got_request_exception_fires() -> None:
    seen: list[Any] = []

    def on_exception(sender: Any, request: Any = None, **kwargs: Any) -> None:
        seen.append(request.path)

    got_request_exception.connect(on_exception)
    try:
        response = await call(stack(), path="/boom/")
    finally:
        got_request_exception.disconnect(on_exception)
    assert response.status == 500
    assert response.text == "custom 500"  # the urlconf's handler500
    assert seen == ["/boom/"]


@needs_executor
async def test_a_request_started_receiver_that_raises_still_finishes_the_request() -> None:
    """As Django, the exception reaches the server; the request still ends with
    request_finished (once) and gives its thread back."""
    finished: list[str] = []

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("broken receiver")

    def on_finished(**kwargs: Any) -> None:
        finished.append(threading.current_thread().name)

    app = stack()
    request_started.connect(broken)
    request_finished.connect(on_finished)
    try:
        with pytest.raises(RuntimeError, match="broken receiver"):
            await call(app, path="/sync/")
    finally:
        request_started.disconnect(broken)
        request_finished.disconnect(on_finished)
    assert len(finished) == 1 and finished[0].startswith("middleware_stack-worker-")
    pool = app.boundary.pool
    assert pool is not None
    assert await wait_until(lambda: not pool.lent)


# -- choosing the path ----------------------------------------------------------------------


def test_describe_says_one_hop_by_default() -> None:
    assert "requests one-hop (1 hand-over per sync request)" in stack().describe()


@needs_executor
async def test_async_only_middleware_keeps_djangos_path_and_is_named() -> None:
    app = stack([RECORDER, "tests.test_onehop.async_only_middleware"])
    assert app.boundary.onehop is None
    assert (
        "requests Django's path (MIDDLEWARE entry 'tests.test_onehop.async_only_middleware' "
        "is async-only)" in app.describe()
    )
    with count_handovers() as counts:
        assert (await call(app, path="/sync/")).text == "sync"
    assert counts["Lease"] > 1


def test_asgi_one_hop_false_keeps_djangos_path() -> None:
    app = stack(ASGI_ONE_HOP=False)
    assert app.boundary.onehop is None
    assert "requests Django's path (ASGI_ONE_HOP is False)" in app.describe()


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_a_non_bool_asgi_one_hop_is_a_configuration_error(value: Any) -> None:
    with pytest.raises(StackConfigurationError, match=r"ASGI_ONE_HOP = .* must be True or False"):
        stack(ASGI_ONE_HOP=value)


class CustomHandler(ASGIHandler):
    async def get_response_async(self, request: HttpRequest) -> Any:
        response = await super().get_response_async(request)
        response["X-Custom"] = "yes"
        return response


class HarmlessSubclass(ASGIHandler):
    chunk_size = 4


async def test_a_handler_subclass_that_overrides_request_handling_keeps_djangos_path() -> None:
    with override_settings(MIDDLEWARE=[]):
        app = build_stack(CustomHandler(), [], checks="off")
    assert "overrides get_response_async" in app.describe()
    assert (await call(app, path="/sync/")).header("x-custom") == "yes"


@SYNC_ITERATOR_WARNING
async def test_a_subclass_that_only_tunes_the_handler_takes_one_hop() -> None:
    with override_settings(MIDDLEWARE=[]):
        app = build_stack(HarmlessSubclass(), [], checks="off")
    assert "requests one-hop" in app.describe()
    response = await call(app, path="/file/")
    assert response.body == b"file body"
    assert [len(m.get("body", b"")) for m in response.messages[1:-1]] == [4, 4, 1]


def test_django_inside_a_router_keeps_djangos_path() -> None:
    class Router:
        def __init__(self, mapping: dict[str, Any]) -> None:
            self.application_mapping = mapping

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await self.application_mapping[scope["type"]](scope, receive, send)

    with override_settings(MIDDLEWARE=[]):
        app = build_stack(Router({"http": get_asgi_application()}), [], checks="off")
    assert "requests Django's path (the router calls Django's handler)" in app.describe()


def test_the_stack_keeps_the_middleware_it_was_built_with() -> None:
    """As Django's handler: MIDDLEWARE is loaded when the stack is built."""
    app = stack([RECORDER])
    with override_settings(MIDDLEWARE=[]):
        asyncio.run(call(app, path="/sync/"))
    assert "process_request" in [what for what, _ in EVENTS]


async def test_a_handler_built_under_another_middleware_keeps_djangos_path() -> None:
    """The one-hop chain is loaded when the stack is built; a handler built earlier under
    other settings must not get a chain with other middleware than its own."""
    with override_settings(MIDDLEWARE=[RECORDER, "tests.pg_site.views.sync_only_middleware"]):
        handler = get_asgi_application()
    with override_settings(MIDDLEWARE=[RECORDER]):
        app = build_stack(handler, [], checks="off")
    assert app.boundary.onehop is None
    assert "the handler was built with another MIDDLEWARE" in app.describe()
    await call(app, path="/sync/")
    assert "process_request" in [what for what, _ in EVENTS]  # the handler's own chain


def test_manage_py_asgi_stack_says_which_path_requests_take() -> None:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    with override_settings(MIDDLEWARE=["tests.pg_site.views.sync_only_middleware"]):
        call_command("asgi_stack", "--application", "tests.pg_site.asgi:application", stdout=out)
    assert "requests one-hop (1 hand-over per sync request)" in out.getvalue()


async def test_an_unexpected_message_after_the_body_raises_as_in_django(
    signals: dict[str, int],
) -> None:
    app = stack()
    messages = [{"type": "http.request", "body": b""}, {"type": "http.request", "body": b"?"}]
    entered = asyncio.Event()

    async def receive() -> Message:
        if len(messages) == 1:
            await entered.wait()  # the second message arrives while the view runs
        return messages.pop(0)

    async def send(message: Message) -> None:
        pass

    request = asyncio.ensure_future(app(http_scope(path="/block/"), receive, send))
    assert await wait_until(ENTERED.is_set)
    entered.set()
    with pytest.raises(AssertionError, match="Invalid ASGI message after request body"):
        await asyncio.wait_for(request, 10)
    GATE.set()
    assert await wait_until(lambda: signals["finished"] == 1)
    assert signals == {"started": 1, "finished": 1}
