"""A websocket connection through the stack, for tests.

::

    ws = Websocket("/ws/chat/")
    connected, subprotocol = await ws.connect()
    await ws.send_json({"hello": "world"})
    assert await ws.receive_json() == {"hello": "world"}
    await ws.close()

The connection goes through the same stack as :class:`~middleware_stack.test.AsyncClient`
(the layers, then ``ASGI_WEBSOCKET_APPLICATION`` or the router), with the client's
cookies when made by ``AsyncClient.websocket()``. Every wait is bounded by ``timeout``
seconds, so a route that never answers fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote, urlsplit

from middleware_stack.test import application as _application
from middleware_stack.types import ASGIApp, Message

__all__ = ["Websocket", "WebsocketClosed"]


class WebsocketClosed(AssertionError):
    """The server closed the connection (``code``) where the test expected a message."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"the websocket was closed by the server with code {code} {reason!r}")
        self.code = code
        self.reason = reason


class Websocket:
    """One websocket connection through the stack (see the module docstring)."""

    def __init__(
        self,
        path: str,
        *,
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
        subprotocols: list[str] | tuple[str, ...] = (),
        application: Any = None,
        checks: str | None = None,
        client: tuple[str, int] = ("127.0.0.1", 0),
        root_path: str = "",
        secure: bool = False,
        timeout: float = 10.0,
        app: ASGIApp | None = None,
    ) -> None:
        parsed = urlsplit(str(path))
        items = list(headers.items()) if isinstance(headers, dict) else list(headers or ())
        raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in items]
        if not any(k == b"host" for k, _ in raw_headers):
            raw_headers.insert(0, (b"host", b"testserver"))
        if subprotocols:
            raw_headers.append((b"sec-websocket-protocol", ", ".join(subprotocols).encode()))
        full = root_path + parsed.path
        self.scope: dict[str, Any] = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "scheme": "wss" if secure else "ws",
            "path": full,
            "raw_path": quote(full, safe="/:@!$&'()*+,;=~%").encode("ascii"),
            "query_string": parsed.query.encode("latin-1"),
            "root_path": root_path,
            "headers": raw_headers,
            "client": client,
            "server": ("testserver", 443 if secure else 80),
            "subprotocols": list(subprotocols),
            "extensions": {},
        }
        self.timeout = timeout
        self._app = app
        self._application = application
        self._checks = _application.CHECKS if checks is None else checks
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._outbox: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.accepted = False
        self.closed: int | None = None  # the close code, once closed by either side
        self.subprotocol: str | None = None

    async def connect(self) -> tuple[bool, str | int | None]:
        """``(True, subprotocol)`` once accepted, or ``(False, close code)`` if refused."""
        app = self._app or _application.application_for(self._application, self._checks)
        self._task = asyncio.ensure_future(app(self.scope, self._inbox.get, self._outbox.put))
        await self._inbox.put({"type": "websocket.connect"})
        message = await self._next()
        kind = message["type"]
        if kind == "websocket.accept":
            self.accepted = True
            self.subprotocol = message.get("subprotocol")
            return True, self.subprotocol
        if kind == "websocket.close":
            self.closed = int(message.get("code", 1000))
            await self._finish()
            return False, self.closed
        if kind == "websocket.http.response.start":  # a denial response
            self.closed = 1006
            await self._finish()
            return False, int(message.get("status", 403))
        raise AssertionError(f"unexpected first message from the websocket app: {message!r}")

    async def send_text(self, text: str) -> None:
        await self._inbox.put({"type": "websocket.receive", "text": text})

    async def send_bytes(self, data: bytes) -> None:
        await self._inbox.put({"type": "websocket.receive", "bytes": data})

    async def send_json(self, data: Any) -> None:
        await self.send_text(json.dumps(data))

    async def receive(self) -> Message:
        """The next message the app sent; raises :class:`WebsocketClosed` on a close."""
        message = await self._next()
        if message["type"] == "websocket.close":
            self.closed = int(message.get("code", 1000))
            await self._finish()
            raise WebsocketClosed(self.closed, message.get("reason") or "")
        return message

    async def receive_text(self) -> str:
        message = await self.receive()
        if message.get("text") is None:
            raise AssertionError(f"expected a text message, got {message!r}")
        return str(message["text"])

    async def receive_bytes(self) -> bytes:
        message = await self.receive()
        if message.get("bytes") is None:
            raise AssertionError(f"expected a bytes message, got {message!r}")
        return bytes(message["bytes"])

    async def receive_json(self) -> Any:
        message = await self.receive()
        text = message.get("text")
        return json.loads(text if text is not None else message["bytes"])

    async def receive_nothing(self, wait: float = 0.1) -> bool:
        """True if the app sends nothing within ``wait`` seconds."""
        if not self._outbox.empty():
            return False
        try:
            message = await asyncio.wait_for(self._outbox.get(), wait)
        except asyncio.TimeoutError:
            return True
        self._outbox.put_nowait(message)  # keep it for the next receive
        return False

    async def close(self, code: int = 1000) -> None:
        """Disconnect (``websocket.disconnect``) and wait for the app to return."""
        if self._task is None:
            return
        if self.closed is None:
            self.closed = code
            await self._inbox.put({"type": "websocket.disconnect", "code": code})
        await self._finish()

    async def __aenter__(self) -> Websocket:
        connected, detail = await self.connect()
        if not connected:
            raise WebsocketClosed(int(detail or 1000))
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def _next(self) -> Message:
        if not self._outbox.empty():
            return self._outbox.get_nowait()
        task = self._task
        if task is None:
            raise AssertionError("the websocket is not connected (await ws.connect() first)")
        get = asyncio.ensure_future(self._outbox.get())
        done, _ = await asyncio.wait(
            {get, task}, timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if get in done:
            return get.result()
        get.cancel()
        if not self._outbox.empty():
            return self._outbox.get_nowait()
        if task in done:
            self._task = None
            task.result()  # the app raised: that is the test's error
            raise AssertionError("the websocket app returned without sending a message")
        raise AssertionError(f"the websocket app sent nothing within {self.timeout} s")

    async def _finish(self) -> None:
        task = self._task
        if task is None:
            return
        self._task = None
        try:
            await asyncio.wait_for(task, self.timeout)
        except asyncio.TimeoutError:
            raise AssertionError(
                f"the websocket app did not return within {self.timeout} s of the close"
            ) from None
