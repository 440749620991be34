"""Layers for the test-client tests: visible marks, a settings reader, a protocol fault."""

from __future__ import annotations

import json

from django.conf import settings

from middleware_stack.types import ASGIApp, Message, Receive, Scope, Send


class Marks:
    """Adds ``x-layer: <mark>`` to responses and ``scope["marks"]``; ``mark`` defaults to
    ``settings.MARK_LAYER_VALUE``, read once, when the stack is built."""

    def __init__(self, app: ASGIApp, mark: str | None = None) -> None:
        self.app = app
        self.mark = mark if mark is not None else getattr(settings, "MARK_LAYER_VALUE", "m")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        scope = {**scope, "marks": [*scope.get("marks", []), self.mark]}

        async def marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message}
                message["headers"] = [*message.get("headers", []), (b"x-layer", self.mark.encode())]
            await send(message)

        await self.app(scope, receive, marked)


class Teapot:
    """Answers ``/teapot`` itself (Django never sees it); a second ``Vary`` line too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/teapot"):
            headers = [
                (b"vary", b"Origin"),
                (b"vary", b"Cookie"),
                (b"set-cookie", b"pot=1; Path=/"),
            ]
            await send({"type": "http.response.start", "status": 418, "headers": headers})
            await send({"type": "http.response.body", "body": b"short and stout"})
            return
        await self.app(scope, receive, send)


class SendsBodyTwiceAfterTheEnd:
    """A protocol fault: a body message after the final one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, send)
        await send({"type": "http.response.body", "body": b"late"})


async def echo_websocket(scope: Scope, receive: Receive, send: Send) -> None:
    """Accepts, then echoes each text message back as JSON with what the layers added."""
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "close":
            await send({"type": "websocket.close", "code": 4000})
            return
        reply = {
            "echo": message.get("text"),
            "marks": scope.get("marks", []),
            "cookie": dict(scope["headers"]).get(b"cookie", b"").decode(),
        }
        await send({"type": "websocket.send", "text": json.dumps(reply)})
