"""Issue 21's sketch of one hop, as a benchmark-only ASGI app (never part of the package).

The issue's evidence that one hand-over per request can beat gunicorn: about 50 lines
that read the body on the loop, make ONE ``run_in_executor`` call on a one-thread pool
doing ``request_started``, an ``ASGIRequest``, ``BaseHandler.get_response`` over
``load_middleware(is_async=False)``, rendering and ``response.close()``, and send the
response from the loop. It cuts the corners the stack may not: no disconnect listener,
no streaming, no async views on the loop, no lifespan, no thread-sensitive context,
``request_finished`` before the bytes are sent.

The harness serves it (``BENCH_APP=sketch``) beside the stack and gunicorn as a bound:
what a one-hop ASGI path costs at least on this machine under this server.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from middleware_stack.types import Receive, Scope, Send

__all__ = ["Sketch", "build"]


class Sketch:
    """Django's sync middleware chain served with one ``run_in_executor`` per request."""

    def __init__(self, middleware: list[str]) -> None:
        from django.core.handlers.asgi import ASGIHandler
        from django.test import override_settings

        with override_settings(MIDDLEWARE=middleware):
            self.handler = ASGIHandler()
            self.handler.load_middleware(is_async=False)
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-sketch")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body_file = await self.handler.read_body(receive)
        loop = asyncio.get_running_loop()
        status, headers, content = await loop.run_in_executor(
            self.pool, self._run, scope, body_file
        )
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    def _run(self, scope: Scope, body_file: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        from django.core import signals
        from django.core.handlers.asgi import ASGIHandler, get_script_prefix
        from django.urls import set_script_prefix

        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=ASGIHandler, scope=scope)
        request, response = self.handler.create_request(scope, body_file)
        if request is not None:
            response = self.handler.get_response(request)
        headers = [(k.encode("ascii"), v.encode("latin-1")) for k, v in response.items()]
        for cookie in response.cookies.values():
            headers.append((b"set-cookie", cookie.output(header="").encode("ascii").strip()))
        content = response.content
        response.close()
        body_file.close()
        return response.status_code, headers, content


def build() -> Sketch:
    """The sketch with ``startproject``'s ``MIDDLEWARE`` (the WSGI comparison's project)."""
    from benchmarks.django_settings import STARTPROJECT_MIDDLEWARE

    return Sketch(STARTPROJECT_MIDDLEWARE)
