"""Hostile input against the example's full stack: raw bytes over a socket to a real
server, and ASGI-level variants driven by hypothesis. Each gets a safe answer; none
gets a 500 from our code."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from middleware_stack import build_stack
from middleware_stack.types import Receive, Scope, Send
from tests.asgi import call, http_scope
from tests.servers import Server

ORIGIN = "http://localhost:5173"
SPELLINGS = [
    "X-Forwarded-User",
    "x-forwarded-user",
    "X-FORWARDED-USER",
    "X_Forwarded_User",
    "x_forwarded_user",
    "X-Forwarded_User",
]


def example_layers() -> list[Any]:
    from example_project.settings import ASGI_MIDDLEWARE

    return list(ASGI_MIDDLEWARE)


def exchange(server: Server, raw: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes; return everything the server answered until it closed or stalled."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as s:
        s.sendall(raw)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
    return b"".join(chunks)


def status_of(answer: bytes) -> int | None:
    if not answer.startswith(b"HTTP/1.1 "):
        return None  # the server closed the connection without an answer: also safe
    return int(answer[9:12])


def header(answer: bytes, name: bytes) -> list[bytes]:
    head = answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
    return [line.split(b":", 1)[1].strip() for line in head if line.lower().startswith(name + b":")]


def request(path: str, *headers: bytes, method: bytes = b"GET") -> bytes:
    lines = [method + b" " + path.encode() + b" HTTP/1.1", b"Host: 127.0.0.1", *headers]
    return b"\r\n".join([*lines, b"Connection: close", b"", b""])


@pytest.mark.parametrize(
    ("case", "raw", "expected"),
    [
        ("huge-header", request("/api/hello/", b"X-Big: " + b"a" * 200_000), (200, 400, 431)),
        (
            "many-headers",
            request("/api/hello/", *(b"X-H%d: v" % i for i in range(2000))),
            (200, 400, 431),
        ),
        (
            "acrh-1mb",
            request(
                "/api/hello/",
                b"Origin: " + ORIGIN.encode(),
                b"Access-Control-Request-Method: POST",
                b"Access-Control-Request-Headers: " + b"x-a, ," * 150_000,
                method=b"OPTIONS",
            ),
            (403, 400, 431),
        ),
        (
            "origin-control-chars",
            request("/api/hello/", b"Origin: http://localhost:5173\x01\x7f"),
            (200, 400),
        ),
        ("origin-non-utf8", request("/api/hello/", b"Origin: http://\xff\xfe.example"), (200,)),
        ("user-non-utf8", request("/api/whoami/", b"X-Forwarded-User: \xff\xfe\xfd"), (200,)),
        (
            "user-control-chars",
            request("/api/whoami/", b"X-Forwarded-User: root\x1b[31m"),
            (200, 400),
        ),
    ],
)
def test_hostile_bytes_get_a_safe_answer(
    example_server: Server, case: str, raw: bytes, expected: tuple[int, ...]
) -> None:
    answer = exchange(example_server, raw)
    status = status_of(answer)
    assert status in expected, answer[:500]
    assert header(answer, b"access-control-allow-origin") == []
    if status == 200 and case.startswith("user-"):
        body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
        assert body["identity"] is None and body["user"] is None
    # The server is still healthy afterwards.
    assert status_of(exchange(example_server, request("/api/hello/"))) == 200


def test_duplicate_origin_headers_get_no_cors_headers(example_server: Server) -> None:
    answer = exchange(
        example_server,
        request("/api/hello/", b"Origin: " + ORIGIN.encode(), b"Origin: " + ORIGIN.encode()),
    )
    assert status_of(answer) == 200
    assert header(answer, b"access-control-allow-origin") == []
    assert header(answer, b"access-control-allow-credentials") == []


def test_duplicate_identity_headers_from_the_proxy_are_refused(example_server: Server) -> None:
    answer = exchange(
        example_server,
        request("/api/whoami/", b"X-Forwarded-User: alice", b"X-Forwarded-User: mallory"),
    )
    assert status_of(answer) == 200
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["identity"] is None


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The innermost app: reports what reached it (identity and identity headers)."""
    auth = scope.get("auth")
    names = sorted({k.decode("latin-1") for k, _ in scope.get("headers", [])})
    body = json.dumps({"identity": getattr(auth, "identity", None), "headers": names}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def stack() -> Any:
    return build_stack(echo_app, example_layers(), checks="off")


@pytest.mark.parametrize("spelling", SPELLINGS)
async def test_spoofed_identity_from_an_untrusted_client_is_stripped(spelling: str) -> None:
    response = await call(
        stack(), "GET", "/api/x/", [(spelling, "admin")], client=("203.0.113.7", 4000)
    )
    data = json.loads(response.body)
    assert data["identity"] is None
    assert not any(h.replace("_", "-") == "x-forwarded-user" for h in data["headers"])


@pytest.mark.parametrize(
    "missing",
    ["client", "server", "root_path", "raw_path", "query_string", "asgi", "http_version", "scheme"],
)
async def test_scopes_missing_optional_keys_are_served(missing: str) -> None:
    scope = http_scope("GET", "/api/x/", [("origin", ORIGIN), ("x-forwarded-user", "u1")])
    del scope[missing]
    response = await call(stack(), scope=scope)
    assert response.status == 200
    assert response.header("access-control-allow-origin") == ORIGIN


HEADER_NAMES = st.sampled_from(
    [
        b"origin",
        b"x-forwarded-user",
        b"x_forwarded_user",
        b"access-control-request-method",
        b"access-control-request-headers",
        b"authorization",
        b"vary",
        b"x-other",
    ]
)
VALUES = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([ORIGIN.encode(), b"null", b"POST", b"x-a, content-type", b"alice", b""]),
)
CLIENTS = st.sampled_from(
    [
        ("127.0.0.1", 1),
        ("::1", 1),
        ("203.0.113.7", 1),
        ("::ffff:127.0.0.1", 1),
        ("not-an-ip", 1),
        None,
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["GET", "POST", "OPTIONS", "PUT", "get"]),
    path=st.sampled_from(["/api/x/", "/other/", "/api/", "/"]),
    headers=st.lists(st.tuples(HEADER_NAMES, VALUES), max_size=8),
    client=CLIENTS,
)
def test_any_scope_through_all_layers_gets_a_safe_answer(
    method: str, path: str, headers: list[tuple[bytes, bytes]], client: Any
) -> None:
    import asyncio

    scope = http_scope(method, path, client=client)
    scope["headers"] = headers
    response = asyncio.run(call(stack(), scope=scope))
    assert response.status in (200, 204, 400, 401, 403)
    assert response.header("access-control-allow-origin") in (None, ORIGIN)
    if response.status == 200 and response.body:
        data = json.loads(response.body)
        trusted = client is not None and client[0] in ("127.0.0.1", "::1", "::ffff:127.0.0.1")
        if not trusted:
            assert data["identity"] is None
            assert not any(h.replace("_", "-") == "x-forwarded-user" for h in data["headers"])
