"""Example views. The home page shows the request's path through the stack."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render


def _stack() -> Any:
    from example_project.asgi import application

    return application


async def home(request: HttpRequest) -> HttpResponse:
    stack = _stack()
    layers = [
        {"name": layer.name, "path": layer.path, "scopes": ", ".join(sorted(layer.scopes))}
        for layer in stack.layers
    ]
    auth = request.scope.get("auth")
    context = {
        "layers": layers,
        "checks": stack.checks,
        "boundary": stack.boundary.summary(),
        "scope_keys": sorted(k for k in request.scope if k not in {"headers"}),
        "state": request.scope.get("state", {}),
        "identity": getattr(auth, "identity", None),
        "user": await request.auser(),
    }
    return render(request, "home.html", context)


async def api_hello(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"hello": "world", "path": request.path})


async def api_item(request: HttpRequest, pk: int) -> JsonResponse:
    return JsonResponse({"id": pk})


async def api_stream(request: HttpRequest) -> StreamingHttpResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(5):
            await asyncio.sleep(0.01)
            yield f"chunk {i}\n".encode()

    return StreamingHttpResponse(chunks(), content_type="text/plain")
