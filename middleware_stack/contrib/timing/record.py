"""The per-request :class:`TimingRecord` and the API views use to add to it.

The record is published in a context variable, so views in their task or in Django's
worker threads can add metrics with :func:`timer` / :func:`record`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from time import perf_counter
from types import TracebackType
from typing import Any, TypeVar, cast

from asgiref.sync import iscoroutinefunction

from middleware_stack.contrib.timing.header import format_metrics
from middleware_stack.types import Message, Receive, Scope, Send

F = TypeVar("F", bound=Callable[..., Any])

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
            body = message.get("body")
            if body:
                self.response_bytes += len(body)
            if not message.get("more_body"):
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
                headers = [*message.get("headers", ()), (b"server-timing", value)]
                if self._extra:
                    headers += self._extra
                # A new message with a new list: an app may send one message dict for
                # every response, and this request's timing must not stay in it.
                # dict.copy() costs a quarter less than dict(message), half {**message}.
                try:
                    message = message.copy()  # type: ignore[attr-defined]
                except AttributeError:  # a mapping other than a dict
                    message = dict(message)
                message["headers"] = headers
            elif self._extra:
                message = dict(message)
                message["headers"] = [*message.get("headers", ()), *self._extra]
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
