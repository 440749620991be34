"""The page origin of the browser test: one HTML page, served on another loopback origin."""

from __future__ import annotations

from middleware_stack.types import Receive, Scope, Send
from tests.asgi import answer_lifespan

PAGE = b"<!doctype html><html><head><title>cors page</title></head><body>page</body></html>"


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await answer_lifespan(receive, send)
        return
    assert scope["type"] == "http"
    found = scope["path"] == "/"
    await send(
        {
            "type": "http.response.start",
            "status": 200 if found else 404,
            "headers": [(b"content-type", b"text/html; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": PAGE if found else b"not found"})
