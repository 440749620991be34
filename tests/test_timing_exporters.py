"""The timing exporters with the real libraries: logging, prometheus_client, OpenTelemetry."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.core.asgi import get_asgi_application
from django.test import override_settings
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from middleware_stack import build_stack
from middleware_stack.contrib.timing.exporters import (
    LoggingExporter,
    OpenTelemetryExporter,
    PrometheusExporter,
)
from tests.asgi import call
from tests.servers import serve

TIMING = "middleware_stack.contrib.timing.TimingMiddleware"


@pytest.fixture
def site() -> Iterator[Any]:
    """Build the timing site's Django app around given exporters."""
    middleware = ["middleware_stack.contrib.timing.RouteMiddleware"]
    with override_settings(ROOT_URLCONF="tests.timing_site.urls", MIDDLEWARE=middleware):

        def build(*on_record: Any) -> Any:
            return build_stack(
                get_asgi_application(),
                [(TIMING, {"on_record": list(on_record)})],
                checks="off",
            )

        yield build


async def test_logging_exporter_writes_one_structured_line_per_request(
    site: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = site(LoggingExporter())
    with caplog.at_level(logging.INFO, logger="middleware_stack.timing"):
        await call(app, "GET", "/items/7")
        await call(app, "GET", "/boom/")
    lines = [r for r in caplog.records if r.name == "middleware_stack.timing"]
    assert len(lines) == 2
    assert lines[0].getMessage().startswith("GET /items/7 200 ")
    assert "route=items/<int:pk>" in lines[0].getMessage()
    timing = lines[0].timing  # type: ignore[attr-defined]
    assert timing["route"] == "items/<int:pk>" and timing["status"] == 200
    assert timing["response_bytes"] == len(b"item 7") and timing["duration"] > 0
    assert lines[1].timing["status"] == 500  # type: ignore[attr-defined]


async def test_logging_exporter_by_dotted_path_is_silent_when_the_level_is_off(
    site: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = site("middleware_stack.contrib.timing.exporters.LoggingExporter")
    with caplog.at_level(logging.WARNING, logger="middleware_stack.timing"):
        await call(app, "GET", "/items/1")
    assert [r for r in caplog.records if r.name == "middleware_stack.timing"] == []


def _samples(registry: CollectorRegistry, name: str) -> dict[tuple[str, ...], float]:
    out: dict[tuple[str, ...], float] = {}
    for metric in registry.collect():
        for s in metric.samples:
            if s.name == name:
                out[(s.labels["method"], s.labels["route"], s.labels["status"])] = s.value
    return out


async def test_prometheus_exporter_labels_by_method_route_and_status_class(site: Any) -> None:
    registry = CollectorRegistry()
    app = site(PrometheusExporter(registry))
    for path in ("/items/1", "/items/2", "/items/3", "/nope", "/boom/"):
        await call(app, "GET", path)
    await call(app, "BREW", "/items/4")  # a client-chosen method must not become a label
    counts = _samples(registry, "http_server_requests_total")
    assert counts == {
        ("GET", "items/<int:pk>", "2xx"): 3.0,
        ("GET", "<unmatched>", "4xx"): 1.0,
        ("GET", "boom/", "5xx"): 1.0,
        ("_OTHER", "items/<int:pk>", "2xx"): 1.0,
    }
    hist = _samples(registry, "http_server_request_duration_seconds_count")
    assert hist[("GET", "items/<int:pk>", "2xx")] == 3.0
    total = _samples(registry, "http_server_request_duration_seconds_sum")
    assert total[("GET", "items/<int:pk>", "2xx")] > 0


def test_prometheus_exporter_can_be_built_twice_for_one_registry() -> None:
    registry = CollectorRegistry()
    first, second = PrometheusExporter(registry), PrometheusExporter(registry)
    assert first.counter is second.counter


def test_a_new_registry_never_inherits_the_metrics_of_a_freed_one() -> None:
    # Registries made and dropped one after another often reuse the same id().
    for _ in range(20):
        registry = CollectorRegistry()
        exporter = PrometheusExporter(registry)
        exporter.counter.labels("GET", "x", "2xx").inc()
        names = {m.name for m in registry.collect()}
        assert "http_server_requests" in names, names
        del registry, exporter


async def test_otel_exporter_records_the_semantic_convention_histogram(site: Any) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    app = site(OpenTelemetryExporter(meter_provider=provider))
    for path in ("/items/1", "/items/2", "/boom/", "/nope"):
        await call(app, "GET", path)
    data = reader.get_metrics_data()
    assert data is not None
    metrics = [
        m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    ]  # fmt: skip
    (metric,) = [m for m in metrics if m.name == "http.server.request.duration"]
    assert metric.unit == "s"
    points = {
        (p.attributes.get("http.route"), p.attributes["http.response.status_code"]): p
        for p in metric.data.data_points
    }
    ok = points[("items/<int:pk>", 200)]
    assert ok.count == 2 and ok.sum > 0
    assert ok.attributes["http.request.method"] == "GET"
    assert ok.attributes["url.scheme"] == "http"
    assert ok.attributes["network.protocol.version"] == "1.1"
    assert "error.type" not in ok.attributes
    assert points[("boom/", 500)].attributes["error.type"] == "500"
    assert "http.route" not in points[(None, 404)].attributes
    assert list(ok.explicit_bounds)[:3] == [0.005, 0.01, 0.025]


@pytest.mark.server
def test_prometheus_multiprocess_counts_add_up_across_two_gunicorn_workers(
    tmp_path: Path,
) -> None:
    """gunicorn + UvicornWorker, 2 workers, PROMETHEUS_MULTIPROC_DIR: one scrape sees all."""
    metrics_dir = tmp_path / "prom"
    metrics_dir.mkdir()
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.timing_site.settings",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    with (
        serve("gunicorn", "tests.timing_site.asgi:application", env=env, ready_path="/healthz")
        as server,
        ThreadPoolExecutor(8) as pool,
    ):  # fmt: skip

        def get(path: str) -> int:
            with httpx.Client(base_url=server.url, timeout=10) as client:  # new connection
                response = client.get(path)
                assert response.status_code == 200
                return int(response.headers["x-pid"])

        # Wait until both workers answer (/healthz is excluded from the metrics).
        deadline = time.monotonic() + 30
        while len(set(pool.map(get, ["/healthz"] * 16))) < 2:
            assert time.monotonic() < deadline, server.log()
        pids: list[int] = []
        while len(set(pids)) < 2 and len(pids) < 400:  # /pid/ blocks its worker's loop
            pids += pool.map(get, ["/pid/"] * 40)
        n = len(pids)

        def scrape() -> tuple[Any, Any]:
            text = httpx.get(server.url + "/metrics", timeout=10).text
            families = {f.name: f for f in text_string_to_metric_families(text)}
            (sample,) = [
                s
                for s in families["http_server_requests"].samples
                if s.name == "http_server_requests_total"
            ]
            (count,) = [
                s
                for s in families["http_server_request_duration_seconds"].samples
                if s.name.endswith("_count")
            ]
            return sample, count

        # A worker records a request after its response is sent, so the last responses
        # can arrive before their records are written: scrape until the counts settle.
        deadline = time.monotonic() + 30
        sample, count = scrape()
        while (sample.value, count.value) != (n, n) and time.monotonic() < deadline:
            time.sleep(0.05)
            sample, count = scrape()
        log = server.log()
    per_worker = {pid: pids.count(pid) for pid in set(pids)}
    assert len(per_worker) == 2, f"both workers should serve: {per_worker}\n{log}"
    counters = {os.path.basename(f) for f in os.listdir(metrics_dir) if f.startswith("counter_")}
    assert counters == {f"counter_{pid}.db" for pid in per_worker}
    assert sample.labels == {"method": "GET", "route": "pid/", "status": "2xx"}
    assert sample.value == n == sum(per_worker.values())
    assert count.value == n
    assert "Traceback" not in log
