"""Views that exercise the timing API from both sides of Django's thread boundary."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from middleware_stack.contrib.timing import record, timer


async def healthz(request: HttpRequest) -> HttpResponse:
    # Excluded from timing; the pid tells a test which worker answered.
    return HttpResponse("ok", headers={"x-pid": str(os.getpid())})


async def item(request: HttpRequest, pk: int) -> HttpResponse:
    return HttpResponse(f"item {pk}")


async def async_metrics(request: HttpRequest) -> HttpResponse:
    async with timer("db", "async query"):
        await asyncio.sleep(0.001)
    record("cache", desc="hit")
    return HttpResponse("async")


def sync_metrics(request: HttpRequest) -> HttpResponse:
    with timer("db", "sync query"):
        time.sleep(0.001)
    # The thread's name shows the view really ran in a worker thread, not the loop's.
    record("thread", 0, threading.current_thread().name)
    return HttpResponse("sync")


async def stream(request: HttpRequest) -> StreamingHttpResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(3):
            await asyncio.sleep(0.02)
            yield b"chunk%d " % i

    return StreamingHttpResponse(chunks())


async def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom")


async def wait_for_disconnect(request: HttpRequest) -> HttpResponse:
    await asyncio.sleep(30)
    return HttpResponse("too late")


async def pid(request: HttpRequest) -> JsonResponse:
    # Blocks this worker's event loop on purpose: concurrent requests then land on the
    # other gunicorn worker, so both workers serve some of them.
    time.sleep(0.02)
    return JsonResponse({"pid": os.getpid()}, headers={"x-pid": str(os.getpid())})


DEMO = """<!doctype html>
<html><head><meta charset="utf-8"><title>Server-Timing</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 16px; color: #222; }
table { border-collapse: collapse; }
td, th { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.bar { background: #4a7bd0; height: 10px; }
</style></head>
<body><h3>performance.getEntriesByType('navigation')[0].serverTiming</h3>
<table id="t"><tr><th>name</th><th>duration (ms)</th><th>description</th><th></th></tr></table>
<script>
const entries = performance.getEntriesByType('navigation')[0].serverTiming;
const max = Math.max(...entries.map(e => e.duration), 1);
const table = document.getElementById('t');
for (const e of entries) {
  const row = table.insertRow();
  row.insertCell().textContent = e.name;
  const d = row.insertCell(); d.textContent = e.duration.toFixed(3); d.className = 'num';
  row.insertCell().textContent = e.description;
  const bar = document.createElement('div'); bar.className = 'bar';
  bar.style.width = (160 * e.duration / max).toFixed(0) + 'px';
  row.insertCell().appendChild(bar);
}
document.body.dataset.ready = entries.length;
</script></body></html>
"""


def demo(request: HttpRequest) -> HttpResponse:
    """The page the docs screenshot shows: its own Server-Timing, rendered by the browser."""
    with timer("db", "orders query"):
        time.sleep(0.012)
    with timer("cache", "session lookup"):
        time.sleep(0.002)
    with timer("render", "template"):
        time.sleep(0.006)
    return HttpResponse(DEMO)
