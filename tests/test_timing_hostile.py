"""Timing under hostile input (issue 15, items 11 and 12): exporters escape what clients
control, and the caches keyed on client input are bounded in size, not only in count."""

from __future__ import annotations

import gc
import logging
import tracemalloc

import httpx
import pytest

from middleware_stack.contrib.timing import TimingMiddleware, format_metrics, set_route
from middleware_stack.contrib.timing import header as timing_header
from middleware_stack.contrib.timing import middleware as timing_middleware
from middleware_stack.contrib.timing.exporters import LoggingExporter, OpenTelemetryExporter
from middleware_stack.types import Receive, Scope, Send
from tests.asgi import call, http_scope
from tests.servers import serve

HOSTILE_PATHS = [
    "/items/1\r\nFORGED 200 0.001ms route=None",
    "/items/\x1b[31mred\x1b[0m",
    "/items/\u2028next\u0085line\x00nul\\",
]


async def ok(scope: Scope, receive: Receive, send: Send) -> None:
    set_route(scope["path"])  # a router that labels with client text: escaped too
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def printable_line(text: str) -> bool:
    return all(" " <= c < "\x7f" for c in text)


@pytest.mark.parametrize("path", HOSTILE_PATHS)
async def test_logging_exporter_escapes_every_client_field(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    layer = TimingMiddleware(ok, on_record=[LoggingExporter()])
    scope = http_scope("GET\r\nX", path)
    with caplog.at_level(logging.INFO, "middleware_stack.timing"):
        await call(layer, scope=scope)
    (record,) = [r for r in caplog.records if r.name == "middleware_stack.timing"]
    message = record.getMessage()
    assert printable_line(message), repr(message)
    assert message.startswith("GET\\r\\nX " + path.encode("unicode_escape").decode())
    assert record.timing["path"] == path  # type: ignore[attr-defined]  # data stays data


async def test_otel_exporter_escapes_scheme_and_route() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    layer = TimingMiddleware(
        ok, on_record=[OpenTelemetryExporter(MeterProvider(metric_readers=[reader]))]
    )
    await call(layer, scope=http_scope("GET", HOSTILE_PATHS[0], scheme="https\r\nx"))
    data = reader.get_metrics_data()
    assert data is not None
    points = [
        p
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        for p in m.data.data_points
    ]
    for point in points:
        for value in point.attributes.values():
            assert not isinstance(value, str) or printable_line(value), repr(value)


@pytest.mark.server
def test_logging_exporter_cannot_be_made_to_forge_lines_under_uvicorn() -> None:
    env = {"DJANGO_SETTINGS_MODULE": "tests.timing_site.log_settings"}
    with serve("uvicorn", "tests.timing_site.asgi:application", env=env) as srv:
        for raw in ("/items/1%0d%0aFORGED%20line", "/items/%1b%5b31mred", "/x%0aFORGED"):
            httpx.get(srv.url + raw, timeout=10)
    # Read once the server has stopped, not inside the block: a record is exported when
    # the application returns, after the response's last byte (Django then closes the
    # response in a thread), so a client holding its response can read the log before
    # the line is written. uvicorn's graceful shutdown waits for every request's task,
    # so now every line is there.
    log = srv.log()
    lines = [line for line in log.splitlines() if line.startswith("TIMING-LOG: ")]
    ours = [
        "TIMING-LOG: GET /items/1\\r\\nFORGED line 404 ",
        "TIMING-LOG: GET /items/\\x1b[31mred 404 ",
        "TIMING-LOG: GET /x\\nFORGED 404 ",
    ]
    # Exactly one escaped line per request, each whole on its own line; the rest are
    # serve()'s readiness probes of "/" (one, or more if one timed out on a slow machine).
    assert [sum(line.startswith(want) for line in lines) for want in ours] == [1, 1, 1], log
    probes = [line for line in lines if line.startswith("TIMING-LOG: GET / 404 ")]
    assert len(probes) >= 1, log
    assert len(lines) == len(ours) + len(probes), log
    assert "\x1b" not in log
    for line in log.splitlines():
        assert not line.startswith("FORGED"), log


# -- item 12: caches bounded by size ----------------------------------------------------------


async def test_exclude_paths_cache_holds_no_long_paths() -> None:
    layer = TimingMiddleware(ok, exclude_paths=[r"^/healthz$"])
    # The 1,100 distinct 65 KB paths, scaled down to 1,100 of 8 KB.
    for i in range(1100):
        await call(layer, "GET", f"/{i}/" + "a" * 8192)
    for i in range(1100):
        await call(layer, "GET", f"/short/{i}")
    cache = layer._excluded
    assert cache is not None
    assert len(cache) <= timing_middleware._EXCLUDE_CACHE
    size = sum(len(path) for path in cache)
    assert size <= timing_middleware._EXCLUDE_CACHE * timing_middleware._EXCLUDE_KEY
    assert all(len(path) <= timing_middleware._EXCLUDE_KEY for path in cache)
    assert "/short/0" in cache  # short paths are still cached
    r = await call(layer, "GET", "/healthz")
    assert r.header("server-timing") is None  # excluded, long paths or not


def test_metric_name_cache_holds_at_most_the_header_prefix_of_each_name() -> None:
    timing_header._cached_token.cache_clear()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        # The 512 distinct 1 MB names, scaled down to 600 of 64 KB (38 MB).
        for i in range(600):
            name = f"{i:04d}" + "n" * 65536
            assert format_metrics([(name, 1.0, None)]).startswith(f"{i:04d}n".encode())
            del name
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    info = timing_header._cached_token.cache_info()
    assert info.currsize <= 512
    assert retained < 1_000_000, retained  # 512 keys of 64 characters, not of 64 KB
