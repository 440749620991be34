"""The Django side of the benchmarks: hello views and their URLconf.

``/async/`` and ``/sync/`` answer ``hello`` (the view type decides whether Django hops
to a worker thread for the view). ``/hold/`` keeps a request open until the memory
benchmark releases it, counting arrivals so the benchmark knows all are in flight.
"""

from __future__ import annotations

import asyncio

from django.http import HttpRequest, HttpResponse
from django.urls import path


class Hold:
    """State shared with :func:`benchmarks.inprocess.measure_memory` (one loop at a time)."""

    gate: asyncio.Event | None = None
    arrived = 0


async def hello_async(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"hello", content_type="text/plain")


def hello_sync(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"hello", content_type="text/plain")


async def hold(request: HttpRequest) -> HttpResponse:
    Hold.arrived += 1
    assert Hold.gate is not None
    await Hold.gate.wait()
    return HttpResponse(b"hello", content_type="text/plain")


urlpatterns = [
    path("async/", hello_async),
    path("sync/", hello_sync),
    path("hold/", hold),
]
