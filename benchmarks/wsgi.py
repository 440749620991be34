"""Django under WSGI, driven by the same in-process harness as the ASGI cases.

Two ways to call Django's ``WSGIHandler``, each wrapped as an ASGI callable so the
harness checks, rotates and times it like every other case (the wrapper costs a
coroutine and two ``send`` calls, what the harness's own ``send`` costs any case):

- :class:`WSGIDirect` calls it on the event loop's thread: plain WSGI, what a sync
  worker does;
- :class:`WSGIFloor` calls it through exactly one hand-off, ``loop.run_in_executor``
  on a one-thread ``ThreadPoolExecutor``: the least any ASGI path that runs Django's
  sync code on a worker thread must pay (issue 21's floor).

Each request gets a WSGI environ built from the ASGI scope, as a server builds it. The
response body is consumed and ``close()`` called (which fires ``request_finished``)
in the same call, on the same thread, as a WSGI server does.
"""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from middleware_stack.types import Receive, Scope, Send

__all__ = ["POOLS", "WSGIDirect", "WSGIFloor", "build", "close_pools", "environ", "wsgi_handler"]

#: One-thread pools of the floor cases, so a run can shut them down.
POOLS: list[ThreadPoolExecutor] = []

_Result = tuple[int, list[tuple[bytes, bytes]], bytes]


def environ(scope: Scope, body: bytes) -> dict[str, Any]:
    """The WSGI environ a server builds for this HTTP scope."""
    env: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", ""),
        "PATH_INFO": scope["path"],
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": scope["server"][0],
        "SERVER_PORT": str(scope["server"][1]),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": scope["client"][0],
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)),
    }
    for name, value in scope["headers"]:
        key = name.decode("latin-1").upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        text = value.decode("latin-1")
        env[key] = f"{env[key]},{text}" if key in env and key.startswith("HTTP_") else text
    return env


def _call(app: Callable[..., Iterable[bytes]], env: dict[str, Any]) -> _Result:
    """One WSGI request, body consumed and closed, as a WSGI server runs it."""
    got: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        got[:] = [status, headers]
        return lambda data: None

    chunks = app(env, start_response)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    status, headers = got
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    return int(status.split(" ", 1)[0]), raw, body


class WSGIDirect:
    """``WSGIHandler`` called on the loop's thread: Django under plain WSGI."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = (await receive()).get("body", b"")
        await _respond(send, _call(self.app, environ(scope, body)))


class WSGIFloor(WSGIDirect):
    """``WSGIHandler`` called through one hand-off: ``run_in_executor`` on a one-thread pool."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        super().__init__(app)
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-wsgi-floor")
        POOLS.append(self.pool)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = (await receive()).get("body", b"")
        env = environ(scope, body)
        loop = asyncio.get_running_loop()
        await _respond(send, await loop.run_in_executor(self.pool, _call, self.app, env))


async def _respond(send: Send, result: _Result) -> None:
    status, headers, body = result
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def wsgi_handler(middleware: list[str] | None = None) -> Callable[..., Iterable[bytes]]:
    """A fresh ``WSGIHandler`` with ``MIDDLEWARE`` (default empty), read once at build."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    with override_settings(MIDDLEWARE=middleware or []):
        return WSGIHandler()


def build(floor: bool, startproject: bool = False) -> WSGIDirect:
    """A W case: plain or through the floor's hand-off, empty or startproject's MIDDLEWARE."""
    from benchmarks.django_settings import STARTPROJECT_MIDDLEWARE

    handler = wsgi_handler(STARTPROJECT_MIDDLEWARE if startproject else None)
    return (WSGIFloor if floor else WSGIDirect)(handler)


def close_pools() -> None:
    """Shut the floor cases' one-thread pools down."""
    while POOLS:
        POOLS.pop().shutdown(wait=True)
