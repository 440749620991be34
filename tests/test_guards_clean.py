"""Clean stacks produce no warning at all: false positives are bugs.

Third-party layers users really stack (Starlette's CORS, GZip and TrustedHost,
asgi-correlation-id) around real Django, through streaming, 404, 500, HEAD, request
bodies, websocket routing and lifespan.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from asgi_correlation_id import CorrelationIdMiddleware
from django.core.asgi import get_asgi_application
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from middleware_stack import StackWarning, build_stack
from middleware_stack.types import Message, Receive, Scope, Send
from tests.asgi import call, lifespan
from tests.test_guards import ws_session

THIRD_PARTY: list[Any] = [
    # update_request_header=False: by default it appends x-request-id to the scope's
    # header list in place, which the checker reports (see the test at the end).
    (CorrelationIdMiddleware, {"update_request_header": False}),
    (CORSMiddleware, {"allow_origins": ["https://app.example.com"], "allow_methods": ["*"]}),
    (GZipMiddleware, {"minimum_size": 10}),
    (TrustedHostMiddleware, {"allowed_hosts": ["testserver", "127.0.0.1"]}),
]


async def echo_websocket(scope: Scope, receive: Receive, send: Send) -> None:
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": f"echo:{message.get('text')}"})


@pytest.fixture
def no_findings(caplog: pytest.LogCaptureFixture) -> Iterator[list[warnings.WarningMessage]]:
    """Fails the test if the checker warned or logged anything."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with caplog.at_level(logging.WARNING, logger="middleware_stack.checks"):
            yield caught
    checks = [r.getMessage() for r in caplog.records if r.name == "middleware_stack.checks"]
    protocol = [c for c in checks if "held the event loop" not in c]
    assert protocol == []
    assert [str(w.message) for w in caught if isinstance(w.message, StackWarning)] == []


def _stack(mode: str = "strict", **kw: Any) -> Any:
    return build_stack(get_asgi_application(), THIRD_PARTY, checks=mode, **kw)


def _violations(stack: Any) -> dict[str, int]:
    return {k: v["violations"] for k, v in stack.check_report().items() if v["violations"]}


HOST = [("host", "testserver")]


@pytest.mark.parametrize("mode", ["strict", "warn"])
@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status"),
    [
        ("GET", "/", HOST, b"", 200),
        ("GET", "/", [*HOST, ("accept-encoding", "gzip")], b"", 200),
        ("HEAD", "/", HOST, b"", 200),
        ("GET", "/stream/", [*HOST, ("accept-encoding", "gzip")], b"", 200),
        ("GET", "/sync-stream/", HOST, b"", 200),
        ("GET", "/nowhere/", HOST, b"", 404),
        ("GET", "/boom/", HOST, b"", 500),
        ("POST", "/json/", HOST, b'{"a": 1}', 200),
        ("GET", "/", [*HOST, ("origin", "https://app.example.com")], b"", 200),
        (
            "OPTIONS",
            "/",
            [
                *HOST,
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "POST"),
            ],
            b"",
            200,
        ),
        ("GET", "/", [("host", "evil.example.com")], b"", 400),
    ],
)
async def test_third_party_layers_around_django_raise_no_finding(
    no_findings: Any,
    mode: str,
    method: str,
    path: str,
    headers: list[tuple[str, str]],
    body: bytes,
    status: int,
) -> None:
    stack = _stack(mode)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(logging.getLogger("django.request"), "disabled", True)
        response = await call(stack, method, path, headers, body)
    assert response.status == status
    assert _violations(stack) == {}


async def test_gzip_really_compressed_the_streamed_response(no_findings: Any) -> None:
    stack = _stack()
    response = await call(stack, "GET", "/stream/", [*HOST, ("accept-encoding", "gzip")])
    assert response.header("content-encoding") == "gzip"
    assert gzip.decompress(response.body) == b"chunk0;chunk1;chunk2;"


async def test_lifespan_through_third_party_layers_and_django_is_clean(no_findings: Any) -> None:
    stack = _stack()
    sent = await lifespan(stack)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert _violations(stack) == {}


async def test_routed_websocket_through_the_layers_is_clean(no_findings: Any) -> None:
    stack = _stack(websocket=echo_websocket)
    sent = await ws_session(stack, ("a", "b"))
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.send"]
    assert sent[1]["text"] == "echo:a"
    assert _violations(stack) == {}


async def test_refused_websocket_is_clean(no_findings: Any) -> None:
    stack = _stack()
    sent = await ws_session(stack)
    assert sent == [{"type": "websocket.close", "code": 1000}]


async def test_a_client_that_disconnects_mid_stream_is_not_a_violation(no_findings: Any) -> None:
    stack = _stack()
    sent: list[Message] = []
    gone = asyncio.Event()

    requested = []

    async def receive() -> Message:
        if not requested:
            requested.append(True)
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body":
            gone.set()

    from tests.asgi import http_scope

    await stack(http_scope("GET", "/stream/", HOST), receive, send)
    assert _violations(stack) == {}


async def test_many_concurrent_requests_keep_their_state_apart(no_findings: Any) -> None:
    stack = _stack()
    responses = await asyncio.gather(
        *(call(stack, "GET", p, HOST) for p in ["/", "/stream/", "/nowhere/", "/sync/"] * 5)
    )
    assert sorted({r.status for r in responses}) == [200, 404]
    assert _violations(stack) == {}


async def test_correlation_id_default_appends_to_the_received_scope_headers_and_is_reported() -> (
    None
):
    # asgi-correlation-id's default update_request_header=True appends the generated
    # x-request-id to scope["headers"] in place, so outer layers see it too: exactly the
    # mutation the ASGI spec asks middleware to avoid. Pinned so a change is noticed.
    stack = build_stack(get_asgi_application(), [CorrelationIdMiddleware], checks="warn")
    with pytest.warns(Warning) as record:
        response = await call(stack, "GET", "/", HOST)
    assert response.status == 200
    [text] = [str(w.message) for w in record]
    assert text.startswith(
        "ASGI_MIDDLEWARE[0] ('asgi_correlation_id.middleware.CorrelationIdMiddleware'): "
        "changed the scope it received instead of copying it (key(s) 'headers')"
    )


CONTRIB: list[Any] = [
    "middleware_stack.contrib.timing.TimingMiddleware",
    (
        "middleware_stack.contrib.cors.CORSMiddleware",
        {"allow_origins": ["https://app.example.com"]},
    ),
    "middleware_stack.contrib.auth.AuthPassthroughMiddleware",
]


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", "/", HOST, 200),
        ("GET", "/stream/", HOST, 200),
        ("GET", "/nowhere/", HOST, 404),
        ("GET", "/boom/", HOST, 500),
        (
            "GET",
            "/",
            [*HOST, ("origin", "https://app.example.com"), ("x-forwarded-user", "ann")],
            200,
        ),
        (
            "OPTIONS",
            "/",
            [
                *HOST,
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "GET"),
            ],
            204,
        ),
    ],
)
async def test_contrib_layers_around_django_raise_no_finding(
    no_findings: Any, method: str, path: str, headers: list[tuple[str, str]], status: int
) -> None:
    stack = build_stack(get_asgi_application(), CONTRIB, checks="strict")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(logging.getLogger("django.request"), "disabled", True)
        response = await call(stack, method, path, headers)
    assert response.status == status
    assert _violations(stack) == {}


async def test_contrib_layers_lifespan_and_websocket_raise_no_finding(no_findings: Any) -> None:
    stack = build_stack(get_asgi_application(), CONTRIB, checks="strict", websocket=echo_websocket)
    assert [m["type"] for m in await lifespan(stack)] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    sent = await ws_session(stack, ("x",))
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send"]
    assert _violations(stack) == {}


async def test_basehttpmiddleware_running_django_in_its_own_task_is_clean(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from starlette.middleware.base import BaseHTTPMiddleware

    class AddHeader(BaseHTTPMiddleware):
        async def dispatch(self, request: Any, call_next: Any) -> Any:
            response = await call_next(request)
            response.headers["x-added"] = "1"
            return response

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stack = build_stack(get_asgi_application(), [AddHeader, *THIRD_PARTY], checks="strict")
        for path in ("/", "/stream/", "/nowhere/"):
            response = await call(stack, "GET", path, HOST)
            assert response.header("x-added") == "1"
    ids = [getattr(w.message, "id", None) for w in caught]
    assert ids == ["middleware_stack.W002"]  # the build-time cost warning, nothing at run time
    assert _violations(stack) == {}
