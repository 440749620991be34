"""TimingMiddleware: Server-Timing syntax, records, view metrics, routes, edge cases."""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
import warnings
from collections.abc import Iterator
from time import perf_counter
from typing import Any

import pytest
from django.core.asgi import get_asgi_application
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from middleware_stack import Layer, StackConfigurationError, StackWarning, build_stack
from middleware_stack.contrib.timing import (
    RouteMiddleware,
    TimingMiddleware,
    TimingRecord,
    current_record,
    format_metrics,
    record,
    set_route,
    timer,
)
from middleware_stack.types import Message, Receive, Scope, Send
from tests.asgi import call, http_scope

TIMING = "middleware_stack.contrib.timing.TimingMiddleware"

# -- a Server-Timing parser that follows the W3C grammar strictly -----------------------
#
#   Server-Timing             = #server-timing-metric
#   server-timing-metric      = metric-name *( OWS ";" OWS server-timing-param )
#   metric-name               = token
#   server-timing-param       = server-timing-param-name OWS "=" OWS server-timing-param-value
#   server-timing-param-name  = token
#   server-timing-param-value = token / quoted-string
#
# with RFC 9110's token, quoted-string (qdtext / quoted-pair) and OWS. Any deviation
# raises ValueError; there is no error recovery, unlike a browser.

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_OWS = r"[ \t]*"
_PARAM = re.compile(rf"{_OWS};{_OWS}({_TOKEN}){_OWS}={_OWS}({_TOKEN}|{_QUOTED})")
_NAME = re.compile(_TOKEN)
_SEP = re.compile(rf"{_OWS},{_OWS}")


def parse_server_timing(value: str) -> list[tuple[str, dict[str, str]]]:
    metrics: list[tuple[str, dict[str, str]]] = []
    pos = 0
    while True:
        m = _NAME.match(value, pos)
        if m is None:
            raise ValueError(f"expected a metric name at {pos}: {value!r}")
        name, pos = m.group(), m.end()
        params: dict[str, str] = {}
        while (p := _PARAM.match(value, pos)) is not None:
            raw = p.group(2)
            if raw.startswith('"'):
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            params.setdefault(p.group(1).lower(), raw)
            pos = p.end()
        metrics.append((name, params))
        if pos == len(value):
            return metrics
        s = _SEP.match(value, pos)
        if s is None:
            raise ValueError(f"expected ',' at {pos}: {value!r}")
        pos = s.end()


def test_the_test_parser_rejects_what_the_grammar_forbids() -> None:
    assert parse_server_timing('db;dur=1.5;desc="a \\"b\\"", total;dur=2') == [
        ("db", {"dur": "1.5", "desc": 'a "b"'}),
        ("total", {"dur": "2"}),
    ]
    for bad in ["a b;dur=1", 'db;dur=1;desc="open', "db;dur=1,", "db;dur", "", "x;desc=a b"]:
        with pytest.raises(ValueError):
            parse_server_timing(bad)


# -- helpers ----------------------------------------------------------------------------


def hello(status: int = 200, body: bytes = b"hello") -> Any:
    headers = [(b"content-type", b"text/plain")]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    app.headers = headers  # type: ignore[attr-defined]
    return app


def timing(app: Any, **options: Any) -> tuple[TimingMiddleware, list[TimingRecord]]:
    records: list[TimingRecord] = []
    options.setdefault("on_record", [records.append])
    return TimingMiddleware(app, **options), records


def st_header(response: Any) -> list[tuple[str, dict[str, str]]]:
    values = response.header_all("server-timing")
    assert len(values) == 1, values
    return parse_server_timing(values[0])


@pytest.fixture
def django_app() -> Iterator[Any]:
    """Django (own urls, RouteMiddleware) behind the timing layer, records collected."""
    records: list[TimingRecord] = []
    middleware = [
        "middleware_stack.contrib.timing.RouteMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
    ]
    with override_settings(ROOT_URLCONF="tests.timing_site.urls", MIDDLEWARE=middleware):
        stack = build_stack(
            get_asgi_application(),
            [(TIMING, {"on_record": [records.append]})],
            checks="off",
        )
        stack.records = records  # type: ignore[attr-defined]
        yield stack


# -- the header -------------------------------------------------------------------------


async def test_total_metric_is_sent_and_follows_the_w3c_grammar() -> None:
    layer, records = timing(hello())
    response = await call(layer)
    metrics = st_header(response)
    assert [name for name, _ in metrics] == ["total"]
    assert float(metrics[0][1]["dur"]) >= 0
    assert re.fullmatch(r"\d+\.\d{3}", metrics[0][1]["dur"])  # ms with µs precision
    assert len(records) == 1


async def test_total_is_measured_when_headers_are_sent_not_when_the_body_ends() -> None:
    marks: dict[str, float] = {}

    async def slow_body(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        marks["headers_sent"] = perf_counter()
        await asyncio.sleep(0.05)
        await send({"type": "http.response.body", "body": b"late"})

    layer, records = timing(slow_body)
    response = await call(layer)
    (rec,) = records
    total = float(st_header(response)[0][1]["dur"])
    assert rec.time_to_headers is not None
    assert total == pytest.approx(rec.time_to_headers * 1000, abs=0.001)
    assert rec.start + rec.time_to_headers <= marks["headers_sent"]  # taken at the start
    assert rec.duration >= 0.05


async def test_server_timing_false_sends_no_header_but_still_records() -> None:
    layer, records = timing(hello(), server_timing=False)
    response = await call(layer)
    assert response.header_all("server-timing") == []
    assert len(records) == 1 and records[0].status == 200


async def test_timing_allow_origin_is_sent_with_the_header() -> None:
    layer, _ = timing(hello(), timing_allow_origin=["https://a.example", "https://b.example:8443"])
    response = await call(layer)
    assert response.header("timing-allow-origin") == "https://a.example, https://b.example:8443"
    layer, _ = timing(hello(), timing_allow_origin="*", server_timing=False)
    assert (await call(layer)).header("timing-allow-origin") == "*"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "https://a.example/path",
        "*, https://a.example",
        ["*", "https://a"],
        3,
        [],
        "https://bücher.example",
        "https://a.example\r\nx-injected: 1",
    ],
)
def test_bad_timing_allow_origin_is_a_configuration_error(value: Any) -> None:
    with pytest.raises(StackConfigurationError) as info:
        TimingMiddleware(hello(), timing_allow_origin=value)
    assert info.value.id == "middleware_stack.E203"
    assert "timing_allow_origin" in str(info.value)


async def test_the_apps_own_header_list_is_not_modified() -> None:
    app = hello()
    layer, _ = timing(app)
    for _ in range(3):
        await call(layer)
    assert app.headers == [(b"content-type", b"text/plain")]


async def test_an_app_reusing_one_start_message_gets_one_header_per_response() -> None:
    start = {"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"1")]}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(start)  # the same dict for every response
        await send({"type": "http.response.body", "body": b""})

    layer, _ = timing(app, timing_allow_origin="*")
    for _ in range(3):
        response = await call(layer)
        assert len(response.header_all("server-timing")) == 1
        assert len(response.header_all("timing-allow-origin")) == 1
    assert start["headers"] == [(b"x-app", b"1")]


@pytest.mark.parametrize("server_timing", [True, False])
async def test_a_start_message_that_is_a_mapping_but_no_dict_is_copied_too(
    server_timing: bool,
) -> None:
    """A broken layer may pass another mapping (no ``copy()``): it is copied as a dict,
    and the layer's own message stays as it was."""
    from collections.abc import Mapping

    class Frozen(Mapping[str, Any]):
        def __init__(self, **items: Any) -> None:
            self._items = items

        def __getitem__(self, key: str) -> Any:
            return self._items[key]

        def __iter__(self) -> Iterator[str]:
            return iter(self._items)

        def __len__(self) -> int:
            return len(self._items)

    start = Frozen(type="http.response.start", status=201, headers=[(b"x-app", b"1")])

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(start)  # type: ignore[arg-type]
        await send({"type": "http.response.body", "body": b"ok"})

    layer, records = timing(app, server_timing=server_timing, timing_allow_origin="*")
    response = await call(layer)
    assert response.status == 201
    assert response.header("x-app") == "1"
    assert len(response.header_all("server-timing")) == (1 if server_timing else 0)
    assert response.header("timing-allow-origin") == "*"
    assert start["headers"] == [(b"x-app", b"1")]
    assert records[0].status == 201


async def test_other_server_timing_headers_from_the_app_are_kept() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"server-timing", b"app;dur=1")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    response = await call(TimingMiddleware(app))
    assert response.header_all("server-timing")[0] == "app;dur=1"
    assert parse_server_timing(response.header_all("server-timing")[1])[0][0] == "total"


# -- view metrics -----------------------------------------------------------------------


async def test_metrics_recorded_by_inner_code_reach_the_header_and_record() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        with timer("db", "select"):
            pass
        async with timer("render"):
            pass
        record("cache", desc="miss")
        record("upstream", 12.5)
        await hello()(scope, receive, send)

    layer, records = timing(app)
    metrics = st_header(await call(layer))
    assert [m[0] for m in metrics] == ["total", "db", "render", "cache", "upstream"]
    assert metrics[1][1]["desc"] == "select" and "dur" in metrics[1][1]
    assert metrics[3][1] == {"desc": "miss"}
    assert metrics[4][1] == {"dur": "12.500"}
    assert [m[0] for m in records[0].metrics] == ["db", "render", "cache", "upstream"]


async def test_async_view_metrics_reach_the_header_through_django(django_app: Any) -> None:
    response = await call(django_app, "GET", "/async-metrics/")
    assert response.status == 200
    metrics = dict(st_header(response))
    assert metrics["db"]["desc"] == "async query" and float(metrics["db"]["dur"]) >= 1.0
    assert metrics["cache"] == {"desc": "hit"}


async def test_sync_view_metrics_reach_the_header_from_djangos_worker_thread(
    django_app: Any,
) -> None:
    response = await call(django_app, "GET", "/sync-metrics/")
    assert response.text == "sync"
    metrics = dict(st_header(response))
    assert metrics["db"]["desc"] == "sync query" and float(metrics["db"]["dur"]) >= 1.0
    # recorded from a thread other than the event loop's
    assert metrics["thread"]["desc"] != threading.current_thread().name
    (rec,) = django_app.records
    assert [m[0] for m in rec.metrics] == ["db", "thread"]


def test_timer_decorates_sync_and_async_functions_and_is_a_no_op_outside_a_request() -> None:
    @timer("work")
    def work(x: int) -> int:
        return x + 1

    @timer("awork", "async")
    async def awork(x: int) -> int:
        return x * 2

    assert work(1) == 2 and current_record() is None  # no request: nothing happens
    record("ignored", 1.0)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert work(2) == 3 and await awork(2) == 4
        await hello()(scope, receive, send)

    layer, records = timing(app)
    asyncio.run(call(layer))
    assert [(m[0], m[2]) for m in records[0].metrics] == [("work", None), ("awork", "async")]


async def test_non_finite_durations_are_dropped_and_the_metric_kept() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        record("a", float("nan"))
        record("b", float("inf"), "x")
        await hello()(scope, receive, send)

    metrics = st_header(await call(TimingMiddleware(app)))
    assert metrics[1:] == [("a", {}), ("b", {"desc": "x"})]


async def test_header_carries_at_most_32_view_metrics_and_the_record_all() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for i in range(100):
            record(f"q{i}", 0.1)
        await hello()(scope, receive, send)

    layer, records = timing(app)
    metrics = st_header(await call(layer))
    assert len(metrics) == 1 + 32
    assert len(records[0].metrics) == 100
    assert format_metrics(records[0].metrics).count(b",") == 31


hostile = st.text(
    st.characters(codec="utf-8") | st.sampled_from('",;=\\\r\n\t \x00\x7f'), max_size=300
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            hostile,
            st.none() | st.floats(allow_nan=True, allow_infinity=True),
            st.none() | hostile,
        ),
        max_size=40,
    )
)
def test_hostile_metric_names_and_descriptions_never_break_the_header(
    metrics: list[tuple[str, float | None, str | None]],
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for name, dur, desc in metrics:
            record(name, dur, desc)
        await hello()(scope, receive, send)

    response = asyncio.run(call(TimingMiddleware(app)))
    (raw,) = [v for k, v in response.headers if k == b"server-timing"]
    assert all(0x20 <= b <= 0x7E or b == 0x09 for b in raw)  # no CR/LF/NUL, ASCII only
    parsed = parse_server_timing(raw.decode("ascii"))
    assert len(parsed) == 1 + min(len(metrics), 32)
    for (_, dur, desc), (_, params) in zip(metrics, parsed[1:], strict=False):
        assert ("desc" in params) == (desc is not None)
        assert ("dur" in params) == (dur is not None and math.isfinite(dur))
        assert set(params) <= {"dur", "desc"}
        if desc is not None and desc.isascii() and desc.isprintable() and len(desc) <= 128:
            assert params["desc"] == desc  # readable descriptions survive exactly


# -- records: streaming, exceptions, disconnects, routes --------------------------------


async def test_streaming_is_measured_to_the_last_chunk() -> None:
    marks: dict[str, float] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for chunk in (b"", b"abc", b"defg"):
            await asyncio.sleep(0.02)
            marks.setdefault(chunk.decode() or "empty", perf_counter())
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await asyncio.sleep(0.02)
        marks["final"] = perf_counter()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        marks["final_sent"] = perf_counter()
        await asyncio.sleep(0.05)  # work after the response is not the request's duration

    layer, records = timing(app)
    await call(layer)
    (rec,) = records
    assert rec.response_bytes == 7
    assert rec.time_to_headers is not None and rec.time_to_first_byte is not None
    # the first byte is the first chunk carrying bytes ("abc"), not the empty one
    assert rec.start + rec.time_to_first_byte >= marks["abc"] > marks["empty"]
    # the duration ends at the final chunk, before the app's trailing work
    assert marks["final"] <= rec.start + rec.duration <= marks["final_sent"]
    assert rec.duration >= 0.08
    assert rec.disconnected is False and rec.exception is None


async def test_django_streaming_response_is_measured_to_the_last_chunk(django_app: Any) -> None:
    response = await call(django_app, "GET", "/stream/")
    assert response.body == b"chunk0 chunk1 chunk2 "
    (rec,) = django_app.records
    assert rec.response_bytes == len(response.body)
    assert rec.time_to_first_byte is not None and rec.time_to_first_byte >= 0.02
    assert rec.duration >= 0.06 and rec.route == "stream/"


async def test_exception_before_the_response_yields_one_500_record_and_propagates() -> None:
    error = ValueError("original")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise error

    layer, records = timing(app)
    with pytest.raises(ValueError) as info:
        await layer(http_scope(), _receive_nothing, _drop)
    assert info.value is error
    (rec,) = records
    assert rec.status == 500 and rec.exception is error and rec.time_to_headers is None


async def test_exception_after_the_response_started_keeps_the_sent_status() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"x", "more_body": True})
        raise KeyError("mid-stream")

    layer, records = timing(app)
    with pytest.raises(KeyError):
        await layer(http_scope(), _receive_nothing, _drop)
    (rec,) = records
    assert rec.status == 201 and isinstance(rec.exception, KeyError)
    assert rec.response_bytes == 1


async def test_django_view_exception_is_recorded_as_djangos_500(django_app: Any) -> None:
    response = await call(django_app, "GET", "/boom/")
    assert response.status == 500
    (rec,) = django_app.records
    assert rec.status == 500 and rec.route == "boom/" and rec.exception is None


async def test_client_disconnect_before_the_response_is_recorded_as_499() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "http.disconnect"  # the client went away; no response

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    layer, records = timing(app)
    await layer(http_scope(), receive, _drop)
    (rec,) = records
    assert rec.disconnected is True and rec.status == 499


async def test_client_disconnect_is_recorded_when_django_cancels_the_view(
    django_app: Any,
) -> None:
    gone = asyncio.Event()
    sent: list[Message] = []

    async def receive() -> Message:
        if not gone.is_set():
            gone.set()
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(0.05)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = http_scope("GET", "/wait-for-disconnect/")
    await asyncio.wait_for(django_app(scope, receive, send), timeout=10)
    assert sent == []
    (rec,) = django_app.records
    assert rec.disconnected is True and rec.status == 499
    assert rec.route == "wait-for-disconnect/"


async def test_disconnect_after_the_complete_response_is_not_a_disconnect() -> None:
    layer, records = timing(hello())
    await call(layer)  # the harness answers http.disconnect once the body is complete
    assert records[0].disconnected is False


async def test_route_label_is_the_same_for_every_parametrised_url(django_app: Any) -> None:
    for pk in (1, 2, 345):
        assert (await call(django_app, "GET", f"/items/{pk}")).text == f"item {pk}"
    assert [r.route for r in django_app.records] == ["items/<int:pk>"] * 3
    assert [r.path for r in django_app.records] == ["/items/1", "/items/2", "/items/345"]


async def test_unresolved_path_has_no_route(django_app: Any) -> None:
    response = await call(django_app, "GET", "/nope/")
    assert response.status == 404
    assert django_app.records[0].route is None and django_app.records[0].status == 404


def test_route_middleware_is_sync_capable_and_does_nothing_outside_a_request() -> None:
    class Request:
        resolver_match = type("Match", (), {"route": "x/"})()

    middleware = RouteMiddleware(lambda request: "response")
    assert middleware(Request()) == "response"
    assert middleware.process_view(Request(), None, (), {}) is None  # no record: no error


async def test_set_route_names_the_route_for_non_django_apps() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        set_route("/things/{id}")
        await hello()(scope, receive, send)

    layer, records = timing(app)
    await call(layer, "GET", "/things/9")
    assert records[0].route == "/things/{id}"


async def test_record_fields() -> None:
    layer, records = timing(hello(status=404, body=b"12345"))
    await call(layer, "POST", "/x")
    rec = records[0]
    data = rec.as_dict()
    assert data["method"] == "POST" and data["path"] == "/x" and data["status"] == 404
    assert data["scope_type"] == "http" and data["response_bytes"] == 5
    assert data["time_to_headers"] <= data["time_to_first_byte"] <= data["duration"]
    assert set(data) >= {
        "method", "path", "route", "status", "duration", "time_to_headers",
        "time_to_first_byte", "response_bytes", "scope_type", "exception", "disconnected",
    }  # fmt: skip


# -- websockets and other scopes --------------------------------------------------------


async def _run_websocket(app: Any, incoming: list[Message]) -> list[Message]:
    sent: list[Message] = []
    queue: asyncio.Queue[Message] = asyncio.Queue()
    for m in incoming:
        queue.put_nowait(m)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/ws", "headers": [], "subprotocols": []}
    await app(scope, queue.get, send)
    return sent


async def test_websocket_connection_yields_one_record() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "héllo"})
        await send({"type": "websocket.send", "bytes": b"123"})
        assert (await receive())["type"] == "websocket.disconnect"

    layer, records = timing(app)
    await _run_websocket(layer, [{"type": "websocket.connect"}, {"type": "websocket.disconnect"}])
    (rec,) = records
    assert rec.scope_type == "websocket" and rec.status == 101
    assert rec.response_bytes == len("héllo".encode()) + 3
    assert rec.disconnected is True  # the client closed it


async def test_refused_websocket_is_recorded_as_403() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.close", "code": 1000})

    layer, records = timing(app)
    await _run_websocket(layer, [{"type": "websocket.connect"}])
    assert records[0].status == 403 and records[0].disconnected is False


async def test_lifespan_passes_through_without_a_record() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    layer, records = timing(app)
    await layer({"type": "lifespan"}, _receive_nothing, _drop)
    assert seen == ["lifespan"] and records == []


# -- exclude_paths and on_record --------------------------------------------------------


async def test_excluded_paths_get_no_header_and_no_record() -> None:
    layer, records = timing(hello(), exclude_paths=[r"/healthz$", r"/static/"])
    assert (await call(layer, "GET", "/healthz")).header("server-timing") is None
    assert (await call(layer, "GET", "/static/app.css")).header("server-timing") is None
    assert (await call(layer, "GET", "/healthz/more")).header("server-timing") is not None
    assert [r.path for r in records] == ["/healthz/more"]


async def test_each_excluded_pattern_keeps_its_own_flags_groups_and_backreferences() -> None:
    # Valid alone, broken or changed if joined into one expression.
    patterns = [r"(?i)^/health$", r"^/(?P<x>a)(?P=x)$", r"^/(?P<x>b)\1$"]
    layer, records = timing(hello(), exclude_paths=patterns)
    for excluded in ("/HEALTH", "/aa", "/bb"):
        assert (await call(layer, "GET", excluded)).header("server-timing") is None
    assert (await call(layer, "GET", "/ab")).header("server-timing") is not None
    assert [r.path for r in records] == ["/ab"]


async def test_exclusion_cache_stays_bounded_under_random_paths() -> None:
    layer, records = timing(hello(), exclude_paths=[r"/healthz$"])
    for i in range(1100):
        await layer(http_scope("GET", f"/random/{i}"), _receive_nothing, _drop)
    await layer(
        http_scope("GET", "/healthz"), _receive_nothing, _drop
    )  # not cached, still excluded
    assert len(layer._excluded or {}) == 1024
    assert len(records) == 1100


@pytest.mark.parametrize("value", [["("], [3], 5])
def test_bad_exclude_paths_is_a_configuration_error(value: Any) -> None:
    with pytest.raises(StackConfigurationError) as info:
        TimingMiddleware(hello(), exclude_paths=value)
    assert info.value.id == "middleware_stack.E202" and "exclude_paths" in str(info.value)


COLLECTED: list[TimingRecord] = []


def collect(rec: TimingRecord) -> None:
    COLLECTED.append(rec)


class Collector:
    """Constructed with no arguments when named by dotted path."""

    instances: list[Collector] = []

    def __init__(self) -> None:
        self.records: list[TimingRecord] = []
        Collector.instances.append(self)

    async def __call__(self, rec: TimingRecord) -> None:
        await asyncio.sleep(0)
        self.records.append(rec)


async def test_on_record_accepts_dotted_paths_to_functions_and_classes_sync_and_async() -> None:
    COLLECTED.clear()
    Collector.instances.clear()
    layer = TimingMiddleware(
        hello(), on_record=["tests.test_timing.collect", "tests.test_timing.Collector"]
    )
    await call(layer)
    assert len(COLLECTED) == 1
    assert Collector.instances[0].records == COLLECTED


async def test_failing_callback_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    got: list[TimingRecord] = []

    def broken(rec: TimingRecord) -> None:
        raise RuntimeError("exporter down")

    async def abroken(rec: TimingRecord) -> None:
        raise RuntimeError("async exporter down")

    layer = TimingMiddleware(hello(), on_record=[broken, got.append, abroken])
    with caplog.at_level(logging.ERROR, logger="middleware_stack.timing"):
        response = await call(layer)
    assert response.status == 200 and len(got) == 1
    assert [r.exc_info[1].args[0] for r in caplog.records if r.exc_info] == [
        "exporter down",
        "async exporter down",
    ]


@pytest.mark.parametrize(
    "value, words",
    [
        ("no.such.module.fn", "cannot be imported"),
        ([42], "not callable"),
        ({"a": 1}, "must be a list"),
        (["tests.test_timing.TIMING"], "not callable"),
    ],
)
def test_bad_on_record_is_a_configuration_error(value: Any, words: str) -> None:
    with pytest.raises(StackConfigurationError) as info:
        TimingMiddleware(hello(), on_record=value)
    assert info.value.id == "middleware_stack.E201" and words in str(info.value)


def test_server_timing_must_be_a_bool() -> None:
    with pytest.raises(StackConfigurationError) as info:
        build_stack(hello(), [(TIMING, {"server_timing": "no"})], checks="off")
    assert info.value.id == "middleware_stack.E204" and "ASGI_MIDDLEWARE[0]" in str(info.value)


# -- order and checks -------------------------------------------------------------------


async def passthrough(app: Any) -> Any:
    return app


class Inner:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def test_timing_not_outermost_warns_unless_the_entry_says_it_is_intended() -> None:
    with pytest.warns(StackWarning, match="outermost") as caught:
        build_stack(hello(), [Inner, TIMING], checks="off")
    assert any(getattr(w.message, "id", "") == "middleware_stack.W004" for w in caught)
    with warnings.catch_warnings():
        warnings.simplefilter("error", StackWarning)
        build_stack(hello(), [Inner, {"middleware": TIMING, "ignore_order": True}], checks="off")
        build_stack(hello(), [TIMING, Inner], checks="off")


def test_timing_may_appear_only_once() -> None:
    with pytest.raises(StackConfigurationError, match="only once"):
        build_stack(hello(), [TIMING, Layer(TIMING, name="second")], checks="off")


def test_deploy_check_reminds_that_server_timing_can_leak_timings() -> None:
    layer = TimingMiddleware(hello())
    ids = [m.id for m in layer.stack_checks(deploy=True)]
    assert ids == ["middleware_stack.W201"]
    assert TimingMiddleware(hello(), server_timing=False).stack_checks(deploy=True) == []


def test_manage_py_check_deploy_reports_the_server_timing_reminder() -> None:
    from django.core import checks

    with override_settings(ASGI_MIDDLEWARE=[TIMING]):
        plain = [m.id for m in checks.run_checks(tags=["middleware_stack"])]
        deploy = [
            m.id
            for m in checks.run_checks(tags=["middleware_stack"], include_deployment_checks=True)
        ]
    assert "middleware_stack.W201" not in plain
    assert deploy.count("middleware_stack.W201") == 1
    with override_settings(ASGI_MIDDLEWARE=[(TIMING, {"server_timing": False})]):
        deploy = [m.id for m in checks.run_checks(include_deployment_checks=True)]
    assert "middleware_stack.W201" not in deploy


def test_check_warns_when_records_have_no_route_hook() -> None:
    layer = TimingMiddleware(hello(), on_record=[print])
    assert [m.id for m in layer.stack_checks(deploy=False)] == ["middleware_stack.W202"]
    with override_settings(MIDDLEWARE=["middleware_stack.contrib.timing.RouteMiddleware"]):
        assert layer.stack_checks(deploy=False) == []
    assert TimingMiddleware(hello()).stack_checks(deploy=False) == []


# -- tiny ASGI stubs --------------------------------------------------------------------


async def _receive_nothing() -> Message:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def _drop(message: Message) -> None:
    pass
