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
        "server": ":".join(str(part) for part in request.scope.get("server") or ("?",)),
        "boundary": stack.boundary.summary(),
        "scope_keys": sorted(k for k in request.scope if k not in {"headers"}),
        "state": request.scope.get("state", {}),
        "identity": getattr(auth, "identity", None),
        "user": await request.auser(),
    }
    return render(request, "home.html", context)


async def healthz(request: HttpRequest) -> HttpResponse:
    """For load balancers; excluded from timing records."""
    return HttpResponse(b"ok", content_type="text/plain")


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


async def api_whoami(request: HttpRequest) -> JsonResponse:
    """Who the stack says you are: the identity layer's result and Django's user."""
    auth = request.scope.get("auth")
    user = await request.auser()
    return JsonResponse(
        {
            "identity": getattr(auth, "identity", None),
            "backend": getattr(auth, "backend", None),
            "user": user.get_username() if user.is_authenticated else None,
        }
    )


async def api_slow(request: HttpRequest) -> JsonResponse:
    """A slow view (for timing and disconnect demonstrations)."""
    await asyncio.sleep(float(request.GET.get("s", "0.5")))
    return JsonResponse({"slept": True})


async def api_fail(request: HttpRequest) -> HttpResponse:
    """Always fails: shows that error responses still carry CORS and timing headers."""
    raise RuntimeError("api_fail always fails")


async def api_db(request: HttpRequest) -> JsonResponse:
    """A query through the ORM (async API; Django runs it on the request's worker thread)."""
    from django.contrib.auth.models import User

    return JsonResponse({"users": await User.objects.acount()})
