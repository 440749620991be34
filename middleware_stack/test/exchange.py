"""One HTTP request through an ASGI app, as a server would make it.

The scope is what an ASGI server sends for the request Django's client describes: an
uppercase method, ``path`` percent-decoded as UTF-8 (with ``root_path`` in front, as
ASGI servers put it), ``raw_path`` and ``query_string`` as bytes on the wire, a ``host``
header, header names lowercased, the client address and the server's.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from middleware_stack.types import ASGIApp, Message

__all__ = ["Exchange", "run", "scope_from_environ", "scope_from_request"]

_PATH_SAFE = "/:@!$&'()*+,;=~%"
_QUERY_SAFE = "/:@!$&'()*+,;=~%?"
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: WSGI names the async client takes as keyword arguments too (not as headers).
WSGI_KEYS = frozenset(
    {
        "REMOTE_ADDR",
        "REMOTE_PORT",
        "SCRIPT_NAME",
        "SERVER_NAME",
        "SERVER_PORT",
        "HTTP_HOST",
        "wsgi.url_scheme",
    }
)


@dataclass
class Exchange:
    """What the app sent back."""

    messages: list[Message] = field(default_factory=list)
    start: Message | None = None
    chunks: list[bytes] = field(default_factory=list)
    streamed: bool = False  # the body came in several messages (more_body)

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("latin-1")


def _path(latin1: str) -> tuple[str, bytes]:
    """A WSGI-style (latin-1 decoded) path -> ASGI ``path`` and ``raw_path``."""
    raw = latin1.encode("latin-1")
    return raw.decode("utf-8", "replace"), quote(raw, safe=_PATH_SAFE).encode("ascii")


def _query(value: Any, wsgi: bool = False) -> bytes:
    """A query string -> the percent-encoded bytes a client sends.

    ``wsgi``: ``value`` is a WSGI environ's ``QUERY_STRING``, text holding the bytes as
    latin-1 (Django's client writes UTF-8 that way): encoding it as UTF-8 once more
    would hand Django mojibake (``é`` read back as ``Ã©``).
    """
    if isinstance(value, bytes):
        return value
    text = str(value)
    if wsgi:
        try:
            return quote(text.encode("latin-1"), safe=_QUERY_SAFE).encode("ascii")
        except UnicodeEncodeError:  # not WSGI's latin-1 text after all: take it as text
            pass
    return quote(text, safe=_QUERY_SAFE, encoding="utf-8").encode("ascii")


def _host(scheme: str, name: str, port: Any) -> bytes:
    port = int(port)
    return (name if _DEFAULT_PORTS.get(scheme) == port else f"{name}:{port}").encode("idna")


def scope_from_environ(environ: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """The sync client's WSGI environ -> an ASGI scope and the request body."""
    scheme = environ.get("wsgi.url_scheme", "http")
    root = environ.get("SCRIPT_NAME", "") or ""
    path, raw_path = _path(root + (environ.get("PATH_INFO") or "/"))
    headers: list[tuple[bytes, bytes]] = []
    host = environ.get("HTTP_HOST")
    server = (environ.get("SERVER_NAME", "testserver"), int(environ.get("SERVER_PORT") or 80))
    headers.append((b"host", _bytes(host) if host else _host(scheme, *server)))
    for key, value in environ.items():
        if key.startswith("HTTP_") and key != "HTTP_HOST":
            name = key[5:].lower().replace("_", "-").encode("latin-1")
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = key.lower().replace("_", "-").encode("latin-1")
        else:
            continue
        if value == "" and name in (b"cookie", b"content-type", b"content-length"):
            continue  # Django's client fills these in empty; a server sends none
        headers.append((name, _bytes(value)))
    stream = environ.get("wsgi.input")
    body = stream.read() if stream is not None else b""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": str(environ.get("SERVER_PROTOCOL", "HTTP/1.1")).partition("/")[2] or "1.1",
        "method": str(environ.get("REQUEST_METHOD", "GET")).upper(),
        "scheme": scheme,
        "path": path,
        "raw_path": raw_path,
        "query_string": _query(environ.get("QUERY_STRING", ""), wsgi=True),
        "root_path": _path(root)[0],
        "headers": headers,
        "client": (environ.get("REMOTE_ADDR", "127.0.0.1"), int(environ.get("REMOTE_PORT") or 0)),
        "server": server,
        "extensions": {},
    }
    return scope, body


def scope_from_request(
    request: dict[str, Any], wsgi: dict[str, Any]
) -> tuple[dict[str, Any], bytes]:
    """The async client's scope (Django's ``_base_scope``) -> a server's scope and body.

    ``wsgi`` holds the WSGI-style keyword arguments (``REMOTE_ADDR``, ``SCRIPT_NAME``,
    ``SERVER_NAME``...) taken off before Django would have made headers of them.
    """
    scope = {k: v for k, v in request.items() if k != "_body_file"}
    payload = request.get("_body_file")
    body = payload.read() if payload is not None else b""
    scheme = wsgi.get("wsgi.url_scheme") or scope.get("scheme", "http")
    root = wsgi.get("SCRIPT_NAME", "") or ""
    path, raw_path = _path(root + scope.get("path", "/"))
    root_path = _path(root)[0]
    server_name, server_port = scope.get("server") or ("testserver", 80)
    server = (wsgi.get("SERVER_NAME", server_name), int(wsgi.get("SERVER_PORT", server_port)))
    headers: list[tuple[bytes, bytes]] = []
    for name, value in scope.get("headers", ()):
        name = _bytes(name).lower()
        if name == b"cookie" and not value:
            continue  # Django's client adds an empty one; a server sends none
        headers.append((name, _bytes(value)))
    if "HTTP_HOST" in wsgi or "SERVER_NAME" in wsgi:
        headers = [h for h in headers if h[0] != b"host"]
    if not any(name == b"host" for name, _ in headers):
        host = wsgi.get("HTTP_HOST")
        headers.insert(0, (b"host", _bytes(host) if host else _host(scheme, *server)))
    client = scope.get("client") or ("127.0.0.1", 0)
    client = (wsgi.get("REMOTE_ADDR", client[0]), int(wsgi.get("REMOTE_PORT", client[1])))
    scope.update(
        {
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "method": str(scope.get("method", "GET")).upper(),
            "scheme": scheme,
            "path": path,
            "raw_path": raw_path,
            "query_string": _query(scope.get("query_string", "")),
            "root_path": root_path,
            "headers": headers,
            "client": client,
            "server": server,
        }
    )
    scope.setdefault("extensions", {})
    return scope, body


async def run(app: ASGIApp, scope: dict[str, Any], body: bytes) -> Exchange:
    """Call ``app`` once; the client disconnects after the final body, as servers do."""
    exchange = Exchange()
    done = asyncio.Event()
    request_sent = False

    async def receive() -> Message:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        exchange.messages.append(message)
        kind = message["type"]
        if kind == "http.response.start":
            exchange.start = message
        elif kind == "http.response.body":
            chunk = message.get("body", b"")
            if chunk:
                exchange.chunks.append(bytes(chunk))
            if message.get("more_body", False):
                exchange.streamed = True
            else:
                done.set()

    try:
        await app(scope, receive, send)
    finally:
        done.set()
    return exchange
