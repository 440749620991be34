"""Ready-made ``on_record`` callables: logging, Prometheus and OpenTelemetry.

Each is a class whose instances are called with one :class:`TimingRecord`; a dotted
path to the class in ``on_record`` constructs it with no arguments. They are sync and
cheap (a log call, a labelled observe), so they run inline on the event loop.

Labels stay bounded: the route is Django's ``resolver_match.route`` (see
:class:`~middleware_stack.contrib.timing.RouteMiddleware`), never the raw path;
unknown methods become ``_OTHER`` (OpenTelemetry's convention); the status is a
class (``2xx``) for Prometheus.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Sequence
from typing import Any

from middleware_stack.contrib.timing import TimingRecord
from middleware_stack.scope import log_safe

__all__ = [
    "LoggingExporter",
    "OpenTelemetryExporter",
    "PrometheusExporter",
    "prometheus_metrics_view",
]

#: Methods kept as label values; anything else is ``_OTHER`` (clients choose methods).
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"}
)
#: The route label of requests Django did not resolve (404s, or no RouteMiddleware).
UNMATCHED = "<unmatched>"
#: OpenTelemetry's recommended buckets for ``http.server.request.duration`` (seconds).
DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip


def _method(record: TimingRecord) -> str:
    method = record.method
    return method if method in KNOWN_METHODS else "_OTHER"


class LoggingExporter:
    """One line per request on ``middleware_stack.timing`` (INFO), fields in ``extra``.

    The message is human-readable (``GET /items/3 200 12.345ms route=items/<int:pk>``),
    its client-controlled fields (method, path, route) escaped as Django escapes the path
    in its own log lines (CR/LF, ANSI and other control characters, non-ASCII written as
    ``\\r``, ``\\x1b``, ...: :func:`middleware_stack.scope.log_safe`), so a request can
    never forge a log line. Structured handlers (JSON formatters) find every field, as
    data, under ``record.timing``; their serialiser escapes it. If
    your handlers do I/O, put them behind a ``logging.handlers.QueueHandler``: this
    call runs on the event loop.
    """

    def __init__(self, logger: str | logging.Logger = "middleware_stack.timing", level: int = 20):
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.level = level

    def __call__(self, record: TimingRecord) -> None:
        if not self.logger.isEnabledFor(self.level):
            return
        ttfb = record.time_to_first_byte
        self.logger.log(
            self.level,
            "%s %s %s %.3fms route=%s ttfb=%s bytes=%d%s%s",
            log_safe(record.method),
            log_safe(record.path),
            record.status,
            record.duration * 1000.0,
            None if record.route is None else log_safe(record.route),
            "-" if ttfb is None else f"{ttfb * 1000.0:.3f}ms",
            record.response_bytes,
            " disconnected" if record.disconnected else "",
            f" exception={type(record.exception).__name__}" if record.exception else "",
            extra={"timing": record.as_dict()},
        )


#: registry -> namespace -> (histogram, counter). Weak keys: a registry that is gone
#: takes its metrics with it, and a new one never inherits them through a reused id().
_prometheus_metrics: weakref.WeakKeyDictionary[Any, dict[str, tuple[Any, Any]]] = (
    weakref.WeakKeyDictionary()
)


class PrometheusExporter:
    """A histogram and a counter labelled ``method``, ``route``, ``status`` (``2xx``).

    ``http_server_request_duration_seconds`` (histogram) and
    ``http_server_requests_total`` (counter), in ``registry`` (default: the global one).
    Multiprocess mode needs nothing here: with ``PROMETHEUS_MULTIPROC_DIR`` set before
    the server starts, prometheus_client writes each worker's values to that directory,
    and :func:`prometheus_metrics_view` (or any ``MultiProcessCollector``) adds them up.
    Only HTTP requests are observed; websocket connections would skew the histogram.
    """

    def __init__(
        self,
        registry: Any = None,
        *,
        namespace: str = "",
        buckets: Sequence[float] = DURATION_BUCKETS,
    ) -> None:
        from prometheus_client import REGISTRY, Counter, Histogram

        registry = REGISTRY if registry is None else registry
        metrics = _prometheus_metrics.setdefault(registry, {})
        if namespace not in metrics:  # one set per registry: stacks may be rebuilt
            labels = ("method", "route", "status")
            metrics[namespace] = (
                Histogram(
                    "http_server_request_duration_seconds",
                    "Time until the final response body was sent, per request.",
                    labels,
                    namespace=namespace,
                    registry=registry,
                    buckets=buckets,
                ),
                Counter(
                    "http_server_requests",
                    "Finished HTTP requests.",
                    labels,
                    namespace=namespace,
                    registry=registry,
                ),
            )
        self.histogram, self.counter = metrics[namespace]

    def __call__(self, record: TimingRecord) -> None:
        if record.scope_type != "http":
            return
        status = record.status or 500
        route = UNMATCHED if record.route is None else log_safe(record.route)
        labels = (_method(record), route or UNMATCHED, f"{status // 100}xx")
        self.histogram.labels(*labels).observe(record.duration)
        self.counter.labels(*labels).inc()


def prometheus_metrics_view(request: Any) -> Any:
    """A Django view serving the metrics, adding up every worker in multiprocess mode."""
    import os

    from django.http import HttpResponse
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        REGISTRY,
        CollectorRegistry,
        generate_latest,
        multiprocess,
    )

    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class OpenTelemetryExporter:
    """OpenTelemetry's ``http.server.request.duration`` histogram (semantic conventions).

    Attributes: ``http.request.method``, ``url.scheme``, ``http.response.status_code``,
    ``http.route`` (when resolved), ``network.protocol.version`` and ``error.type``
    (the exception's class, or the status code for 5xx). ``meter_provider`` defaults to
    the global one set with ``opentelemetry.metrics.set_meter_provider``.
    """

    def __init__(self, meter_provider: Any = None) -> None:
        from opentelemetry import metrics

        import middleware_stack

        meter = metrics.get_meter(
            "middleware_stack.contrib.timing",
            middleware_stack.__version__,
            meter_provider=meter_provider,
        )
        self.histogram = meter.create_histogram(
            "http.server.request.duration",
            unit="s",
            description="Duration of HTTP server requests.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )

    def __call__(self, record: TimingRecord) -> None:
        if record.scope_type != "http":
            return
        scope = record.scope
        status = record.status or 500
        # The scheme can come from a proxy header (uvicorn --proxy-headers): escaped like
        # every other value that reaches an exporter from outside.
        attributes: dict[str, str | int] = {
            "http.request.method": _method(record),
            "url.scheme": log_safe(scope.get("scheme", "http"), 32),
            "http.response.status_code": status,
            "network.protocol.version": log_safe(scope.get("http_version", "1.1"), 32),
        }
        if record.route is not None:
            attributes["http.route"] = log_safe(record.route)
        if record.exception is not None:
            attributes["error.type"] = type(record.exception).__qualname__
        elif status >= 500:
            attributes["error.type"] = str(status)
        self.histogram.record(record.duration, attributes)
