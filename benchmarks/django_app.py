"""The Django side of the benchmarks: hello views and their URLconf.

``/async/`` and ``/sync/`` answer ``hello`` (the view type decides whether Django hops
to a worker thread for the view). ``/hold/`` keeps a request open until the memory
benchmark releases it, counting arrivals so the benchmark knows all are in flight.
``/db/`` runs one query (:mod:`benchmarks.release_check`).
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


def db_sync(request: HttpRequest) -> HttpResponse:
    """One query on the thread's connection (the release-check benchmark)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
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
    path("db/", db_sync),
]
