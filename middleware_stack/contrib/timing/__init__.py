"""Server-Timing and one timing record per request, seen from the outermost layer.

Why a layer of its own: from outside every other layer it sees the whole request
(other layers, Django, the view, streaming) and nothing else, so concurrent requests
never pollute each other's numbers (unlike process-wide CPU timers), and background
work after the final body message is not counted (unlike timers that stop when the
app returns).

Per request it creates one :class:`TimingRecord`, publishes it in a context variable
(so views, in their task or in Django's worker threads, can add metrics with
:func:`timer` / :func:`record`, and :class:`RouteMiddleware` can carry Django's route
back), hands the app the record's own ``send`` and ``receive`` methods, and passes the
finished record to each ``on_record`` callable. Everything that can be decided once
(header bytes, exclusion regex, which callbacks are async) is decided in ``__init__``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextvars import ContextVar
from time import perf_counter
from types import TracebackType
from typing import Any, TypeVar, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from middleware_stack import StackConfigurationError
from middleware_stack.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "RouteMiddleware",
    "TimingMiddleware",
    "TimingRecord",
    "current_record",
    "record",
    "set_route",
    "timer",
]

logger = logging.getLogger("middleware_stack.timing")

#: The dotted path of the Django hook that carries ``resolver_match.route`` back.
ROUTE_MIDDLEWARE = "middleware_stack.contrib.timing.RouteMiddleware"
#: At most this many view metrics go into one header (all stay in the record):
#: a loop that times every query must not grow the header past proxies' limits.
MAX_HEADER_METRICS = 32
_MAX_NAME = 64
_EXCLUDE_CACHE = 1024
_MAX_DESC = 128

OnRecord = Callable[["TimingRecord"], Any]
F = TypeVar("F", bound=Callable[..., Any])

_new = object.__new__
_current: ContextVar[TimingRecord | None] = ContextVar("middleware_stack_timing", default=None)


class TimingRecord:
    """What one finished request (or websocket connection) took.

    Times are in seconds, measured with :func:`time.perf_counter` from the moment the
    timing layer received the scope. ``None`` means "did not happen". The object is
    created per request and handed to every ``on_record`` callable once the app has
    returned; treat it as read-only there.

    Fields that have not changed from their default live on the class, so creating a
    record per request costs two attribute writes.
    """

    #: Django's ``resolver_match.route`` (``"items/<int:pk>"``), or ``None``.
    route: str | None = None
    #: The status sent; 500 if the app failed before starting a response; 499 if the
    #: client went away first; for websockets 101 (accepted) or 403 (refused).
    status: int | None = None
    #: Until the final body message reached the layer (or the app returned without one).
    duration: float = 0.0
    #: Until ``http.response.start`` (``websocket.accept``) reached the layer.
    time_to_headers: float | None = None
    #: Until the first body chunk carrying bytes (or the final one, if the body is empty).
    time_to_first_byte: float | None = None
    #: Body bytes sent (websocket: bytes and UTF-8 text of every message sent).
    response_bytes: int = 0
    #: The exception the app raised (it propagates unchanged), or ``None``.
    exception: BaseException | None = None
    #: True if the client went away before the response was complete.
    disconnected: bool = False
    #: View metrics: ``(name, dur_ms or None, desc or None)`` in the order recorded.
    metrics: Sequence[tuple[str, float | None, str | None]] = ()

    def __init__(self, scope: Scope) -> None:
        self._scope = scope
        #: ``perf_counter()`` when the layer received the scope.
        self.start = perf_counter()

    def add_metric(self, name: str, dur: float | None, desc: str | None) -> None:
        """Append a view metric; safe from several threads (``dict.setdefault`` is atomic)."""
        self.__dict__.setdefault("metrics", []).append((name, dur, desc))

    @property
    def scope_type(self) -> str:
        return cast(str, self._scope["type"])

    @property
    def method(self) -> str:
        """The request method; ``"GET"`` for websockets (the handshake's method)."""
        return cast(str, self._scope.get("method", "GET"))

    @property
    def path(self) -> str:
        return cast(str, self._scope.get("path", ""))

    @property
    def scope(self) -> Scope:
        """The ASGI scope the layer received (for the scheme, client, headers...)."""
        return self._scope

    def as_dict(self) -> dict[str, Any]:
        """The record's fields as plain data (the exception as its class name)."""
        exc = self.exception
        return {
            "method": self.method,
            "path": self.path,
            "route": self.route,
            "status": self.status,
            "duration": self.duration,
            "time_to_headers": self.time_to_headers,
            "time_to_first_byte": self.time_to_first_byte,
            "response_bytes": self.response_bytes,
            "scope_type": self.scope_type,
            "exception": None if exc is None else type(exc).__qualname__,
            "disconnected": self.disconnected,
            "metrics": list(self.metrics),
        }

    def __repr__(self) -> str:
        return (
            f"<TimingRecord {self.method} {self.path!r} route={self.route!r} "
            f"status={self.status} duration={self.duration:.6f}>"
        )


class _HTTPTiming(TimingRecord):
    """The record of an HTTP request; its ``send`` method is the ``send`` the app gets.

    Why not closures: one object per request instead of a record plus two closures and
    their cells. ``send`` is a plain ``def`` returning the server's awaitable, so
    forwarding a message adds no coroutine frame. Each layer makes a subclass holding
    its header settings, so a request sets four attributes and nothing else.
    """

    _header: bool = True
    _extra: tuple[tuple[bytes, bytes], ...] = ()
    _send: Send
    _receive: Receive

    def send(self, message: Message) -> Awaitable[None]:
        kind = message["type"]
        if kind == "http.response.body":
            body = message.get("body", b"")
            if body:
                self.response_bytes += len(body)
            if not message.get("more_body", False):
                self.duration = now = perf_counter() - self.start
                if self.time_to_first_byte is None:
                    self.time_to_first_byte = now
            elif body and self.time_to_first_byte is None:
                self.time_to_first_byte = perf_counter() - self.start
        elif kind == "http.response.start":
            self.time_to_headers = elapsed = perf_counter() - self.start
            self.status = message["status"]
            if self._header:
                value = b"total;dur=%.3f" % (elapsed * 1000.0)
                if self.metrics:
                    value += b", " + format_metrics(self.metrics)
                # A new message with a new list: an app may send one message dict for
                # every response, and this request's timing must not stay in it.
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", ()),
                        (b"server-timing", value),
                        *self._extra,
                    ],
                }
            elif self._extra:
                message = {**message, "headers": [*message.get("headers", ()), *self._extra]}
        elif kind == "http.response.pathsend":
            self.time_to_first_byte = self.duration = perf_counter() - self.start
        return self._send(message)

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.disconnect" and not self.duration:
            self.disconnected = True
        return message


# -- the public API for views and inner layers ------------------------------------------


def current_record() -> TimingRecord | None:
    """The record of the request being served here, or ``None`` outside one."""
    return _current.get()


def record(name: str, dur: float | None = None, desc: str | None = None) -> None:
    """Add a metric to the current request: ``dur`` in milliseconds, as in the header.

    Outside a timed request it does nothing, so library code may call it freely.
    Non-finite durations are dropped (the metric is kept without ``dur``).
    """
    rec = _current.get()
    if rec is None:
        return
    if dur is not None:
        dur = float(dur)
        if not math.isfinite(dur):
            dur = None
    rec.add_metric(str(name), dur, None if desc is None else str(desc))


def set_route(route: str | None) -> None:
    """Set the current request's ``route`` label (for non-Django apps, websocket routers)."""
    rec = _current.get()
    if rec is not None:
        rec.route = route


class timer:  # lowercase: used like a function, ``with timer("db"):``
    """Time a block or a function into the current request's Server-Timing.

    ``with timer("db", "orders query"):`` / ``async with timer("render"):`` /
    ``@timer("search")`` on a sync or async function. The record is looked up when the
    block starts, so it works in async views and in sync views running in Django's
    worker threads (asgiref copies the context into the thread).
    """

    __slots__ = ("_rec", "_start", "desc", "name")

    def __init__(self, name: str, desc: str | None = None) -> None:
        self.name = name
        self.desc = desc
        self._rec: TimingRecord | None = None
        self._start = 0.0

    def __enter__(self) -> timer:
        self._rec = _current.get()
        self._start = perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        rec = self._rec
        if rec is not None:
            ms = (perf_counter() - self._start) * 1000.0
            rec.add_metric(str(self.name), ms, None if self.desc is None else str(self.desc))
            self._rec = None

    async def __aenter__(self) -> timer:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, fn: F) -> F:
        name, desc = self.name, self.desc
        if iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_timed(*args: Any, **kwargs: Any) -> Any:
                with timer(name, desc):
                    return await fn(*args, **kwargs)

            return cast(F, async_timed)

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with timer(name, desc):
                return fn(*args, **kwargs)

        return cast(F, timed)


# -- header formatting -----------------------------------------------------------------

_NOT_TCHAR = re.compile(r"[^!#$%&'*+\-.^_`|~0-9A-Za-z]")
_NOT_QDTEXT = re.compile(r"[^\t\x20-\x7e]")


@functools.lru_cache(maxsize=512)
def _token(name: str) -> str:
    """A metric name as an RFC 9110 token: every other character becomes ``_``."""
    return _NOT_TCHAR.sub("_", name[:_MAX_NAME]) or "_"


def _quoted(desc: str) -> str:
    """A description as a quoted-string: printable ASCII only, ``"`` and ``\\`` escaped."""
    text = _NOT_QDTEXT.sub("?", desc[:_MAX_DESC])
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_metrics(metrics: Iterable[tuple[str, float | None, str | None]]) -> bytes:
    """``name;dur=1.234;desc="..."`` entries, comma-separated; always valid syntax."""
    parts = []
    for i, (name, dur, desc) in enumerate(metrics):
        if i == MAX_HEADER_METRICS:
            break
        part = _token(name)
        if dur is not None:
            part += f";dur={dur:.3f}"
        if desc is not None:
            part += ";desc=" + _quoted(desc)
        parts.append(part)
    return ", ".join(parts).encode("ascii")


# -- option parsing ----------------------------------------------------------------------

#: scheme://host[:port] in ASCII, as the Origin header serializes it (IDNA hosts in
#: their xn-- form), or "null".
_ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s/,;\"\\]+|null")


def _callbacks(value: Any) -> list[OnRecord]:
    from django.utils.module_loading import import_string

    items = [value] if isinstance(value, str) or callable(value) else value
    if not isinstance(items, list | tuple):
        raise StackConfigurationError(
            f"on_record={value!r} must be a list of callables or dotted paths.",
            hint='Write "on_record": ["middleware_stack.contrib.timing.exporters.LoggingExporter"].',
            id="middleware_stack.E201",
        )
    result: list[OnRecord] = []
    for item in items:
        obj = item
        if isinstance(item, str):
            try:
                obj = import_string(item)
            except ImportError as exc:
                raise StackConfigurationError(
                    f"on_record entry {item!r} cannot be imported: {exc}",
                    hint="Check the dotted path; it names a callable taking the record, or a "
                    "class constructed with no arguments (an exporter).",
                    id="middleware_stack.E201",
                ) from exc
            if inspect.isclass(obj):
                try:
                    obj = obj()
                except Exception as exc:
                    raise StackConfigurationError(
                        f"on_record entry {item!r} is a class, and constructing it with no "
                        f"arguments raised {type(exc).__name__}: {exc}",
                        hint="Pass a configured instance instead of the dotted path.",
                        id="middleware_stack.E201",
                    ) from exc
        if not callable(obj):
            raise StackConfigurationError(
                f"on_record entry {item!r} is not callable.",
                hint="Each entry is a callable taking one TimingRecord (sync or async).",
                id="middleware_stack.E201",
            )
        result.append(cast(OnRecord, obj))
    return result


def _is_async(fn: Any) -> bool:
    if iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004
    return not inspect.isroutine(fn) and call is not None and iscoroutinefunction(call)


def _exclusion(paths: Any) -> Callable[[str], Any] | None:
    items = [paths] if isinstance(paths, str) else paths
    if not isinstance(items, list | tuple) or not all(isinstance(p, str) for p in items):
        raise StackConfigurationError(
            f"exclude_paths={paths!r} must be a list of regular expressions (strings).",
            hint='Write "exclude_paths": [r"^/healthz$", r"^/static/"].',
            id="middleware_stack.E202",
        )
    if not items:
        return None
    compiled = []
    for p in items:
        try:
            compiled.append(re.compile(p))
        except re.error as exc:
            raise StackConfigurationError(
                f"exclude_paths entry {p!r} is not a valid regular expression: {exc}.",
                hint="Paths are matched with re.match (anchored at the start of the path).",
                id="middleware_stack.E202",
            ) from exc
    if len(compiled) == 1:
        return compiled[0].match
    # Each on its own, not joined into one: inline flags, group names and
    # backreferences keep the meaning they have alone (answers are cached per path).
    matchers = tuple(c.match for c in compiled)
    return lambda path: any(m(path) for m in matchers) or None


def _allow_origin(value: Any) -> bytes | None:
    if value is None or value is False:
        return None
    items = [value] if isinstance(value, str) else value
    ok = isinstance(items, list | tuple) and bool(items)
    ok = ok and all(
        isinstance(o, str) and o.isascii() and (o == "*" or _ORIGIN.fullmatch(o)) for o in items
    )
    if not ok or ("*" in items and len(items) > 1):
        raise StackConfigurationError(
            f"timing_allow_origin={value!r} is not '*' or a list of origins.",
            hint='Write "timing_allow_origin": "*" or ["https://app.example.com"] '
            "(scheme://host[:port], no path; an international host in its xn-- form).",
            id="middleware_stack.E203",
        )
    return ", ".join(items).encode("ascii")


# -- the layer ---------------------------------------------------------------------------


class TimingMiddleware:
    """Send ``Server-Timing``, and report one :class:`TimingRecord` per request.

    Options: ``server_timing`` (send the header; default on), ``timing_allow_origin``
    (``"*"`` or origins for ``Timing-Allow-Origin``), ``on_record`` (callables or dotted
    paths, sync or async), ``exclude_paths`` (regexes, ``re.match`` on the path; those
    requests pass through untouched and produce no record).

    Sync callbacks run inline on the event loop after the app returned, so they must
    take microseconds (a counter, a log call); async ones are awaited there too. Either
    way the response has already been sent. A callback that raises is logged on
    ``middleware_stack.timing`` and never affects the request.
    """

    stack_constraints = {"outermost": True, "unique": True}

    def __init__(
        self,
        app: ASGIApp,
        *,
        server_timing: bool = True,
        timing_allow_origin: str | list[str] | None = None,
        on_record: Iterable[OnRecord | str] | OnRecord | str = (),
        exclude_paths: Iterable[str] | str = (),
    ) -> None:
        if not isinstance(server_timing, bool):
            raise StackConfigurationError(
                f"server_timing={server_timing!r} must be True or False.",
                hint="False stops the Server-Timing header; records are still produced.",
                id="middleware_stack.E204",
            )
        self.app = app
        self.server_timing = server_timing
        self.callbacks = _callbacks(on_record)
        self._sync = tuple(cb for cb in self.callbacks if not _is_async(cb))
        self._async: tuple[Callable[[TimingRecord], Awaitable[Any]], ...] = tuple(
            cb for cb in self.callbacks if _is_async(cb)
        )
        self._match = _exclusion(exclude_paths)
        # path -> excluded?, for the paths seen first; bounded so that random paths
        # from a hostile client cost a regex match each, never memory.
        self._excluded: dict[str, bool] | None = {} if self._match is not None else None
        tao = _allow_origin(timing_allow_origin)
        extra = ((b"timing-allow-origin", tao),) if tao is not None else ()
        self._record_class: type[_HTTPTiming] = type(
            "TimingRecord", (_HTTPTiming,), {"_header": server_timing, "_extra": extra}
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "websocket":
                await self._websocket(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        excluded = self._excluded
        if excluded is not None:
            path = scope["path"]
            hit = excluded.get(path)  # the cached answer, or None: ask the regex
            if hit if hit is not None else self._is_excluded(path):
                await self.app(scope, receive, send)
                return

        rec: _HTTPTiming = _new(self._record_class)
        rec._scope = scope
        rec._send = send
        rec._receive = receive
        rec.start = perf_counter()
        token = _current.set(rec)
        try:
            await self.app(scope, rec.receive, rec.send)
        except BaseException as exc:
            rec.exception = exc
            if isinstance(exc, OSError) and rec.status is not None and not rec.duration:
                rec.disconnected = True  # the server's send failed: the client is gone
            raise
        finally:
            _current.reset(token)
            if not rec.duration:
                rec.duration = perf_counter() - rec.start
            if rec.status is None:
                rec.status = _unstarted_status(rec)
            # _report(), inlined: one coroutine frame less on every request.
            for cb in self._sync:
                try:
                    cb(rec)
                except Exception:
                    logger.exception("on_record callback %r failed", cb)
            for acb in self._async:
                try:
                    await acb(rec)
                except Exception:
                    logger.exception("on_record callback %r failed", acb)

    async def _report(self, rec: TimingRecord) -> None:
        for cb in self._sync:
            try:
                cb(rec)
            except Exception:
                logger.exception("on_record callback %r failed", cb)
        for acb in self._async:
            try:
                await acb(rec)
            except Exception:
                logger.exception("on_record callback %r failed", acb)

    def _is_excluded(self, path: str) -> bool:
        cache = cast(dict[str, bool], self._excluded)
        hit = cache.get(path)
        if hit is None:
            assert self._match is not None
            hit = self._match(path) is not None
            if len(cache) < _EXCLUDE_CACHE:
                cache[path] = hit
        return hit

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._excluded is not None and self._is_excluded(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        rec = TimingRecord(scope)
        start = rec.start
        closed_by_app = False

        async def timed_send(message: Message) -> None:
            nonlocal closed_by_app
            kind = message["type"]
            if kind == "websocket.send":
                data = message.get("bytes")
                text = message.get("text")
                size = len(data) if data else (len(text.encode()) if text else 0)
                if rec.time_to_first_byte is None:
                    rec.time_to_first_byte = perf_counter() - start
                rec.response_bytes += size
            elif kind == "websocket.accept":
                rec.time_to_headers = perf_counter() - start
                rec.status = 101
            elif kind == "websocket.close":
                closed_by_app = True
                if rec.status is None:
                    rec.status = 403
            elif kind == "websocket.http.response.start" and rec.status is None:
                rec.time_to_headers = perf_counter() - start
                rec.status = message["status"]
            try:
                await send(message)
            except OSError:
                rec.disconnected = True
                raise

        async def timed_receive() -> Message:
            message = await receive()
            if message["type"] == "websocket.disconnect" and not closed_by_app:
                rec.disconnected = True
            return message

        token = _current.set(rec)
        try:
            await self.app(scope, timed_receive, timed_send)
        except BaseException as exc:
            rec.exception = exc
            raise
        finally:
            _current.reset(token)
            rec.duration = perf_counter() - start
            if rec.status is None:
                rec.status = _unstarted_status(rec)
            await self._report(rec)

    def stack_checks(self, deploy: bool) -> list[Any]:
        """``check --deploy``: the header is on; ``check``: route labels need the hook."""
        from django.conf import settings
        from django.core import checks

        messages: list[Any] = []
        if deploy and self.server_timing:
            messages.append(
                checks.Warning(
                    "TimingMiddleware sends a Server-Timing header on every response. Timings "
                    "can leak information to any client (whether a cache was hit, a user "
                    "exists, a password check ran), and are readable by scripts of origins "
                    "listed in timing_allow_origin.",
                    hint='Set "server_timing": False for public production traffic unless you '
                    "mean to expose it; records and exporters keep working without it.",
                    obj="middleware_stack.contrib.timing.TimingMiddleware",
                    id="middleware_stack.W201",
                )
            )
        if not deploy and self.callbacks and ROUTE_MIDDLEWARE not in settings.MIDDLEWARE:
            messages.append(
                checks.Warning(
                    "TimingMiddleware reports records, but Django's MIDDLEWARE lacks "
                    f"{ROUTE_MIDDLEWARE!r}, so every record's route is None and exporters "
                    "label all requests '<unmatched>'.",
                    hint=f"Add {ROUTE_MIDDLEWARE!r} to MIDDLEWARE (any position).",
                    obj="middleware_stack.contrib.timing.TimingMiddleware",
                    id="middleware_stack.W202",
                )
            )
        return messages


def _unstarted_status(rec: TimingRecord) -> int:
    """No response was started: what the client got (or would have got)."""
    exc = rec.exception
    if exc is not None and isinstance(exc, Exception):
        return 500  # the server answers 500 for an app that fails before responding
    if rec.disconnected:
        return 499  # nginx's "client closed request": nobody received a status
    return 500 if rec.scope_type == "http" else 403


# -- the Django side ---------------------------------------------------------------------


class RouteMiddleware:
    """Django middleware: copy ``request.resolver_match.route`` into the timing record.

    Why a Django middleware: the resolved route exists only on Django's request, after
    URL resolution, and no signal carries it. Its ``process_view`` hook runs right after
    resolution and before the view, so the route is known even when the view raises or
    is cancelled by a client disconnect. Put it anywhere in ``MIDDLEWARE``. Its hook
    matches the handler's mode (a coroutine under ASGI), so it never costs a thread
    switch, and ``__call__`` hands the request straight on.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)
            self.process_view = self._aprocess_view  # type: ignore[method-assign,assignment]

    def __call__(self, request: Any) -> Any:
        return self.get_response(request)

    def process_view(self, request: Any, view: Any, args: Any, kwargs: Any) -> None:
        _note_route(request)

    async def _aprocess_view(self, request: Any, view: Any, args: Any, kwargs: Any) -> None:
        _note_route(request)


def _note_route(request: Any) -> None:
    rec = _current.get()
    if rec is not None:
        match = getattr(request, "resolver_match", None)
        if match is not None:
            rec.route = match.route
