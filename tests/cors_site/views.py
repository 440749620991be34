from __future__ import annotations

from collections.abc import AsyncIterator

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils.cache import patch_vary_headers
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def data(request: HttpRequest, policy: str) -> HttpResponse:
    response = JsonResponse(
        {"policy": policy, "method": request.method, "custom": request.headers.get("X-Custom")}
    )
    response["X-Api-Version"] = "7"
    return response


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom (expected by the CORS tests)")


def stream(request: HttpRequest) -> StreamingHttpResponse:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"one,"
        yield b"two,"
        yield b"three"

    return StreamingHttpResponse(chunks(), content_type="text/plain")


def vary(request: HttpRequest) -> HttpResponse:
    """Sets its own Vary and a CORS header, both of which the layer must handle."""
    response = HttpResponse("vary")
    patch_vary_headers(response, ["Cookie", "Accept-Language"])
    response["Access-Control-Allow-Origin"] = "*"
    return response
