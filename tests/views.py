"""Views used by the in-process and real-server tests."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse


async def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"hello", content_type="text/plain")


def sync_hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"sync hello", content_type="text/plain")


async def state(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"state": {k: str(v) for k, v in request.scope.get("state", {}).items()}})


def thread_name(request: HttpRequest) -> HttpResponse:
    return HttpResponse(threading.current_thread().name, content_type="text/plain")


async def streaming(request: HttpRequest) -> StreamingHttpResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(3):
            await asyncio.sleep(0)
            yield f"chunk{i};".encode()

    return StreamingHttpResponse(chunks(), content_type="text/plain")


def sync_streaming(request: HttpRequest) -> StreamingHttpResponse:
    def chunks() -> Iterator[bytes]:
        yield b"a;"
        yield b"b;"

    return StreamingHttpResponse(chunks(), content_type="text/plain")


async def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom from the view")


async def cookie(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(b"ok")
    response.set_cookie("flavour", "oat")
    response["X-Custom-Header"] = "Yes"
    return response


async def echo_headers(request: HttpRequest) -> JsonResponse:
    meta = {k: v for k, v in request.META.items() if k.startswith("HTTP_")}
    return JsonResponse({"meta": meta, "body": request.body.decode("latin-1")})


def echo_json(request: HttpRequest) -> HttpResponse:
    return HttpResponse(json.dumps({"method": request.method}), content_type="application/json")
