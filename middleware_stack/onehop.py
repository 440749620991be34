"""Serve an HTTP request of Django's own ``ASGIHandler`` with one thread hand-over.

Why: Django's async path (``get_response_async`` over ``load_middleware(is_async=True)``)
hands each sync part of a request to a thread on its own: ``request_started``, every
``MiddlewareMixin`` hook, the view, ``response.close()``. That is 16 round trips through
the event loop with startproject's ``MIDDLEWARE``, each costing about as much as a whole
request under WSGI. Here the body is read on the loop, then ONE thread-sensitive
call (:mod:`middleware_stack.hopcall`, asgiref's ``sync_to_async`` without its generic
machinery) does ``request_started``, builds the request, runs Django's sync
middleware chain (``load_middleware(is_async=False)``, built once) and, for a response
whose content is already bytes, ``response.close()`` (``request_finished``); the
response is then sent from the loop: the start message the hop built
(:mod:`middleware_stack.response`) and the body, or, for a streaming response, one with
cookies, or a handler that overrides it, the handler's own ``send_response``.

What stays Django's: every sync part of a request runs on one thread (the boundary's
lease); an async view runs on the loop (``async_to_sync`` in the chain hops back to this
loop, which the hop names on the worker as ``SyncToAsync`` does, and its thread-sensitive
calls come back to the request's worker); a disconnect cancels the request as the installed Django
does; exceptions become Django's 500 in the chain; ``request_started`` and
``request_finished`` fire once each, also when a disconnect abandons a sync view that
cannot be cancelled (the hop closes what it produces once it is abandoned).

What differs: ``request_finished`` fires before the bytes of a non-streaming response
are sent (a second hop for it would halve throughput); a streaming response is closed
in a second hop after it is sent, as Django does (a sync iterator costs a third: Django
consumes it in a thread).

Chosen per project at build time (:func:`choose`): Django's own ``ASGIHandler`` (a
subclass that overrides how it handles requests keeps Django's path), every
``MIDDLEWARE`` entry sync-capable (an async-only one would be wrapped in
``async_to_sync``, one hop per request back to the loop), and a handler that loaded the
``MIDDLEWARE`` in force when the stack is built (:func:`loaded_middleware`).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import inspect
import threading
from typing import TYPE_CHECKING, Any

from asgiref.sync import AsyncToSync, SyncToAsync, ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.http import FileResponse, HttpResponseBase
from django.urls import set_script_prefix
from django.utils.module_loading import import_string

from middleware_stack import hopcall
from middleware_stack.exceptions import StackConfigurationError
from middleware_stack.guards.blocking import mark_hop
from middleware_stack.response import lowercase_headers, start_message
from middleware_stack.routers import AppShape
from middleware_stack.settings import shown
from middleware_stack.types import Message, Receive, Scope, Send
from middleware_stack.worker import settle_here

if TYPE_CHECKING:
    from middleware_stack.lease import Lease

__all__ = ["OVERRIDES", "OneHop", "choose", "loaded_middleware", "why_not"]

#: ``ASGIHandler`` methods a subclass may not override for the one-hop path, which
#: replaces them (the ones it calls, ``read_body``, ``create_request``,
#: ``send_response``, ``listen_for_disconnect``, are the handler's own).
OVERRIDES = ("__call__", "handle", "get_response_async", "run_get_response")


def why_not(handler: Any) -> str | None:
    """Why ``handler`` cannot take the one-hop path, or None when it can."""
    cls = type(handler)
    for name in OVERRIDES:
        if getattr(cls, name) is not getattr(ASGIHandler, name):
            return f"{cls.__module__}.{cls.__qualname__} overrides {name}"
    for entry in settings.MIDDLEWARE:
        middleware = import_string(entry)
        if not getattr(middleware, "sync_capable", True):
            return f"MIDDLEWARE entry {entry!r} is async-only"
    return None


def _unadapt(node: Any) -> Any:
    """What an asgiref adapter (``async_to_sync``/``sync_to_async`` of a hook) wraps."""
    for _ in range(8):
        if isinstance(node, SyncToAsync):
            node = node.func
        elif isinstance(node, AsyncToSync):
            node = node.awaitable
        else:
            break
    return node


def _next_in_chain(middleware: Any) -> Any:
    """The ``get_response`` a loaded middleware calls: its attribute (classes), or the
    closure cell holding it (function middleware)."""
    found = getattr(middleware, "get_response", None)
    if found is not None:
        return found
    for cell in getattr(middleware, "__closure__", None) or ():
        with contextlib.suppress(ValueError):  # an empty cell
            value = _unadapt(cell.cell_contents)
            if callable(value) and hasattr(value, "__wrapped__"):
                return value
    return None


def loaded_middleware(handler: Any) -> list[str]:
    """The middleware in a handler's loaded chain, outermost first, named by type (or
    function), read back from the chain itself (Django keeps no list of them).

    The one-hop chain is loaded from ``MIDDLEWARE`` when the stack is built; a handler
    built earlier under other settings (``override_settings`` around
    ``get_asgi_application()`` only) loaded another list, and must keep its own path.
    A chain it cannot read ends the list where it stops; both chains are read alike.
    """
    names: list[str] = []
    node = getattr(handler, "_middleware_chain", None)
    for _ in range(1000):
        # convert_exception_to_response() around each middleware keeps it as __wrapped__.
        middleware = getattr(_unadapt(node), "__wrapped__", None)
        if middleware is None or isinstance(getattr(middleware, "__self__", None), BaseHandler):
            break  # the end of the chain: the handler's own _get_response(_async)
        middleware = _unadapt(middleware)
        kind = middleware if inspect.isfunction(middleware) else type(middleware)
        names.append(f"{kind.__module__}.{kind.__qualname__}")
        node = _next_in_chain(middleware)
    return names


def choose(app: Any, shape: AppShape, setting: Any, own_context: bool) -> tuple[OneHop | None, str]:
    """At build time: the one-hop path for ``app``, or None; and what describe() says."""
    if not isinstance(setting, bool):
        raise StackConfigurationError(
            f"ASGI_ONE_HOP = {shown(setting)} must be True or False.",
            hint="True (the default) serves each HTTP request's sync work (middleware, "
            "view, signals) with one hand-over to a worker thread; False keeps Django's "
            "own path, one hand-over per sync part.",
            id="middleware_stack.E010",
        )
    if shape.kind != "django":  # a router holds Django's handler and calls it itself
        return None, "Django's path (the router calls Django's handler)" if shape.has_django else ""
    if not setting:
        return None, "Django's path (ASGI_ONE_HOP is False)"
    reason = why_not(app)
    if reason is None:
        hop = OneHop(app, own_context=own_context)
        reason = hop.mismatch
        if reason is None:
            return hop, "one-hop (1 hand-over per sync request)"
    return None, f"Django's path ({reason})"


def _interrupt(state: _Request, task: asyncio.Task[Any], listener: asyncio.Future[None]) -> None:
    """The disconnect listener ended (the client left, or sent what it may not): stop
    the request's work, as Django does, unless it is done already."""
    if state.working and not listener.cancelled():
        state.interrupted = True
        task.cancel()


def _still_cancelled(task: asyncio.Task[Any]) -> bool:
    """Take back our own cancel (3.11+ counts them); True if another one is pending."""
    uncancel = getattr(task, "uncancel", None)  # Python 3.11+
    return bool(uncancel is not None and uncancel() > 0)


class _Request:
    """What the loop and the worker share about one request: who closes its response."""

    __slots__ = (
        "abandoned",
        "close_error",
        "closed",
        "interrupted",
        "lock",
        "response",
        "start",
        "working",
    )

    def __init__(self) -> None:
        self.working = True  # the hop or the send is under way (the loop's side)
        self.start: Message | None = None  # built in the hop (response.start_message)
        self.interrupted = False  # the disconnect listener cancelled the work
        self.lock = threading.Lock()
        self.response: HttpResponseBase | None = None
        self.closed = False  # close() or request_finished is done, or taken on by someone
        self.abandoned = False  # the loop is done with the hop: it closes what it makes
        self.close_error: Exception | None = None


class OneHop:
    """Django's ``ASGIHandler`` request path with one hand-over; see the module.

    ``own_context``: enter ``ThreadSensitiveContext()`` per request (as Django's
    ``__call__`` does) when the boundary enters none, without a thread pool.
    """

    def __init__(self, handler: ASGIHandler, *, own_context: bool = False) -> None:
        self.handler = handler
        self.handler_class = type(handler)
        # Django's own send_response: the hop may build its start message itself.
        self.own_send = self.handler_class.send_response is ASGIHandler.send_response
        self.own_context = own_context
        # The handler's twin with the sync middleware chain, loaded now from the
        # MIDDLEWARE in force, as the handler loaded its async one when it was built.
        self.chain = copy.copy(handler)
        self.chain.load_middleware(is_async=False)
        # None when the handler loaded the same middleware (see loaded_middleware).
        self.mismatch: str | None = None
        if loaded_middleware(handler) != loaded_middleware(self.chain):
            self.mismatch = (
                "the handler was built with another MIDDLEWARE than the one in force now: "
                "build the stack where the handler is built"
            )
        self._hop = SyncToAsync(self._run, thread_sensitive=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.own_context:
            async with ThreadSensitiveContext():
                await self.serve(scope, receive, send)
        else:
            await self.serve(scope, receive, send)

    async def serve(
        self, scope: Scope, receive: Receive, send: Send, lease: Lease | None = None
    ) -> None:
        """Inside the request's thread-sensitive context: body, hop, send, close.

        ``lease``: the executor that context runs sync code on (the boundary's pool), for
        the lean hand-over of :mod:`middleware_stack.hopcall`; without it, asgiref's.
        """
        lean = lease if lease is not None and hopcall.usable() else None
        handler = self.handler
        try:
            body_file = await handler.read_body(receive)
        except RequestAborted:
            return
        state = _Request()
        task = asyncio.current_task()
        assert task is not None
        # Race a disconnect against the work, as Django does (5.2 with two tasks, 6.x with
        # a task group around the work): a listener that ends first cancels this task.
        listener = asyncio.ensure_future(handler.listen_for_disconnect(receive))
        listener.add_done_callback(functools.partial(_interrupt, state, task))
        try:
            try:
                mark_hop()  # an async view's blocking stays charged to Django (checks on)
                if lean is not None:
                    response = await hopcall.call(lean, self._run, state, scope, body_file)
                else:
                    response = await self._hop(state, scope, body_file)
                start = state.start
                if start is None:
                    await handler.send_response(response, lowercase_headers(send))  # type: ignore[arg-type]
                else:
                    await send(start)
                    await self._send_content(response.content, send)
            except asyncio.CancelledError:
                if not state.interrupted or _still_cancelled(task):
                    raise  # the server cancelled the request
            else:
                if state.interrupted:  # the cancel was absorbed on the way (asgiref)
                    _still_cancelled(task)
            finally:
                state.working = False
            if listener.done() and not listener.cancelled():
                error = listener.exception()
                if error is not None and not isinstance(error, RequestAborted):
                    raise error  # an unexpected ASGI message after the body
            if state.close_error is not None:  # request_finished raised: after sending
                raise state.close_error
        finally:
            if not listener.done():
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
            await self._finish(state, lean)
            body_file.close()

    def _run(self, state: _Request, scope: Scope, body_file: Any) -> Any:
        """The hop: all of the request's sync work, on its worker thread."""
        set_script_prefix(get_script_prefix(scope))
        response: Any
        try:
            signals.request_started.send(sender=self.handler_class, scope=scope)
            request, response = self.handler.create_request(scope, body_file)
            if request is not None:
                response = self.chain.get_response(request)
                response._handler_class = self.handler_class
                if isinstance(response, FileResponse):
                    response.block_size = self.handler.chunk_size
        except BaseException:
            # No response to close: request_finished still fires, once, on this thread.
            state.closed = True
            try:
                signals.request_finished.send(sender=self.handler_class)
            finally:
                settle_here()
            raise
        if self.own_send and not response.streaming:
            try:
                state.start = start_message(response)
            except Exception:  # Django's send_response, on the loop, raises it as Django does
                state.start = None
        with state.lock:
            state.response = response
            own = state.abandoned or not response.streaming
            if own:
                state.closed = True
        if own:
            try:
                response.close()
            except Exception as exc:  # a request_finished receiver raised
                state.close_error = exc
            # The request's last sync call: reset the connections it left dirty now,
            # not in one more wake-up of this thread at release (see threads).
            settle_here()
        return response

    async def _send_content(self, content: bytes, send: Send) -> None:
        """A non-streaming response's body, in the messages Django's ``send_response``
        sends: one, unless it is longer than the handler's ``chunk_size``."""
        handler = self.handler
        if len(content) <= handler.chunk_size:
            await send({"type": "http.response.body", "body": content, "more_body": False})
            return
        for chunk, last in handler.chunk_bytes(content):
            await send({"type": "http.response.body", "body": chunk, "more_body": not last})

    async def _finish(self, state: _Request, lean: Lease | None) -> None:
        """Close what the hop produced and did not close (a streaming response, sent or
        not); a hop still running, abandoned, closes its own."""
        with state.lock:
            state.abandoned = True
            response = state.response
            if response is None or state.closed:
                return
            state.closed = True
        if lean is not None:
            await hopcall.call(lean, response.close)
        else:
            await sync_to_async(response.close)()
