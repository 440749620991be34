"""``TimingMiddleware`` (the ASGI layer) and ``RouteMiddleware`` (its Django hook)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from time import perf_counter
from typing import Any, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from middleware_stack import StackConfigurationError
from middleware_stack.contrib.timing.options import (
    OnRecord,
    _allow_origin,
    _callbacks,
    _exclusion,
    _is_async,
)
from middleware_stack.contrib.timing.record import TimingRecord, _current, _HTTPTiming
from middleware_stack.scope import path_info
from middleware_stack.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("middleware_stack.timing")

#: The dotted path of the Django hook that carries ``resolver_match.route`` back.
ROUTE_MIDDLEWARE = "middleware_stack.contrib.timing.RouteMiddleware"
#: The exclusion answers cached per path: at most this many paths, each at most
#: ``_EXCLUDE_KEY`` characters long (longer paths are matched every time). The bound
#: is in characters, not only entries: 1,024 paths of 64 KB would otherwise be 64 MB.
_EXCLUDE_CACHE = 1024
_EXCLUDE_KEY = 256
_new = object.__new__


# -- the layer ---------------------------------------------------------------------------


class TimingMiddleware:
    """Send ``Server-Timing``, and report one :class:`TimingRecord` per request.

    Options: ``server_timing`` (send the header; default on), ``timing_allow_origin``
    (``"*"`` or origins for ``Timing-Allow-Origin``), ``on_record`` (callables or dotted
    paths, sync or async), ``exclude_paths`` (regexes, ``re.match`` on the path Django
    resolves, :func:`middleware_stack.scope.path_info`; those requests pass through
    untouched and produce no record).

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
            path = path_info(scope)
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
            if len(cache) < _EXCLUDE_CACHE and len(path) <= _EXCLUDE_KEY:
                cache[path] = hit
        return hit

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._excluded is not None and self._is_excluded(path_info(scope)):
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
