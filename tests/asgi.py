"""A small in-process ASGI harness: call an app like a server would, collect the reply."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from middleware_stack.test.exchange import run
from middleware_stack.types import ASGIApp, Message
from middleware_stack.types import Receive as ASGIReceive
from middleware_stack.types import Send as ASGISend


@dataclass
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    messages: list[Message] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), decoded as latin-1."""
        key = name.lower().encode()
        for k, v in self.headers:
            if k.lower() == key:
                return v.decode("latin-1")
        return None

    def header_all(self, name: str) -> list[str]:
        key = name.lower().encode()
        return [v.decode("latin-1") for k, v in self.headers if k.lower() == key]

    @property
    def text(self) -> str:
        return self.body.decode()


def http_scope(
    method: str = "GET",
    path: str = "/",
    headers: Iterable[tuple[str | bytes, str | bytes]] = (),
    *,
    query_string: bytes = b"",
    client: tuple[str, int] | None = ("127.0.0.1", 50000),
    **extra: Any,
) -> dict[str, Any]:
    def b(x: str | bytes) -> bytes:
        return x if isinstance(x, bytes) else x.encode("latin-1")

    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query_string,
        "root_path": "",
        "headers": [(b(k).lower(), b(v)) for k, v in headers],
        "client": client,
        "server": ("127.0.0.1", 8000),
    }
    scope.update(extra)
    return scope


async def call(
    app: ASGIApp,
    method: str = "GET",
    path: str = "/",
    headers: Iterable[tuple[str | bytes, str | bytes]] = (),
    body: bytes = b"",
    *,
    scope: dict[str, Any] | None = None,
    **extra: Any,
) -> Response:
    """Run one HTTP request through ``app``; the client disconnects after the response
    (the test client's own exchange, so the two cannot drift apart)."""
    scope = scope if scope is not None else http_scope(method, path, headers, **extra)
    sent = (await run(app, scope, body)).messages
    start = next((m for m in sent if m["type"] == "http.response.start"), None)
    assert start is not None, f"no http.response.start in {sent!r}"
    body_out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Response(start["status"], list(start.get("headers", [])), body_out, sent)


async def lifespan(app: ASGIApp, *, state: dict[str, Any] | None = None) -> list[Message]:
    """Run startup then shutdown; returns what the app sent."""
    sent: list[Message] = []
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    scope: dict[str, Any] = {"type": "lifespan", "asgi": {"version": "3.0"}}
    if state is not None:
        scope["state"] = state

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "lifespan.startup.complete":
            await inbox.put({"type": "lifespan.shutdown"})

    await asyncio.wait_for(app(scope, inbox.get, send), timeout=10)
    return sent


async def answer_lifespan(receive: ASGIReceive, send: ASGISend) -> None:
    """What a raw app does with a lifespan scope: complete startup, then shutdown."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return
