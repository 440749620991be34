"""The Django boundary: the innermost layer, between the stack and Django.

Django's ``ASGIHandler`` handles only ``http`` scopes (it raises ``ValueError`` on
others), sends header names as written (``Content-Type``), and starts two OS threads
per request. The boundary makes that edge right:

- ``lifespan`` is answered here, running the user's ``ASGI_LIFESPAN`` context manager;
  state it yields reaches every request's ``scope["state"]``;
- ``websocket`` goes to ``ASGI_WEBSOCKET_APPLICATION``, or is refused cleanly
  (``websocket.close`` before accept, which servers turn into a 403);
- response header names are lowercased, so outer layers can match on them;
- each request runs in ``ThreadSensitiveContext(executor=...)`` with a lease on a pooled
  thread, taken at its first sync call (see :mod:`middleware_stack.threads`); a thread
  is handed on only once the database connections the request left dirty are reset
  (:mod:`middleware_stack.dbstate`);
- Django's own ``ASGIHandler`` gets its HTTP requests served with one thread hand-over
  for all their sync work (:mod:`middleware_stack.onehop`), unless ``ASGI_ONE_HOP`` is
  False or the project cannot take it (``summary()`` says which path and why).

The last two are Django's problems. Django inside a known router (Channels'
``ProtocolTypeRouter``, ``URLRouter``, see :mod:`middleware_stack.routers`) gets them for
its HTTP requests, and the router keeps the scope types it maps (websocket first of all).
Around any other ASGI app, HTTP requests pass straight through (no thread-sensitive
context is entered, at about 6 µs each, where the app would not have entered one
either), websockets go to that app, and the stack says so once at build time and in
``describe()``. Websocket connections always get a pooled context, since their consumers
typically run database code through ``sync_to_async``;
a websocket holds a thread only while one of its sync calls runs.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AbstractAsyncContextManager
from typing import Any

from asgiref.sync import ThreadSensitiveContext

from middleware_stack import threads
from middleware_stack.edge_settings import edge_settings
from middleware_stack.heap import freeze_startup_heap
from middleware_stack.lifespan_fallback import LifespanFallback
from middleware_stack.response import lowercase_headers
from middleware_stack.routers import AppShape, shape_of
from middleware_stack.settings import read_settings
from middleware_stack.types import ASGIApp, Receive, Scope, Send

__all__ = ["DjangoBoundary"]

logger = logging.getLogger("middleware_stack")
_warned_old_asgiref = False
_noted_not_django: set[str] = set()


#: What the boundary does not do around an app that is not Django (describe(), build log).
NOT_DJANGO = "does not lowercase response header names nor pool threads for HTTP"

#: Seconds lifespan shutdown waits for the pooled threads to close their connections.
CLOSE_TIMEOUT = 5.0

#: Seconds lifespan shutdown waits for requests still in flight to unwind.
DRAIN_TIMEOUT = 5.0


def _close_db_connections() -> None:
    from django.db import connections

    connections.close_all()


def _reset_dirty_connections() -> None:
    from middleware_stack.dbstate import reset_dirty_connections

    reset_dirty_connections()


class DjangoBoundary:
    """Answer lifespan, route websocket, lowercase headers and pool threads."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        lifespan: Any = None,
        websocket: ASGIApp | None = None,
        thread_reuse: bool | None = None,
        pool_idle: int | None = None,
        pool_max: int | None = None,
    ) -> None:
        conf = read_settings()
        edge = edge_settings(conf, thread_reuse, pool_idle, pool_max)
        self.app = app
        self.lifespan = lifespan
        self.websocket = websocket
        self.owner: Any = app  # set to the Stack once built; passed to lifespan(app)
        self.shape: AppShape = shape_of(app)
        # Django's HTTP edge (header case, pooled threads) applies: Django, or Django in a router.
        self.is_django = self.shape.has_django
        self.answers_lifespan = lifespan is not None or (
            self.is_django and not (self.shape.handles and "lifespan" in self.shape.handles)
        )
        # A websocket goes to the app when it (a router, or a non-Django app) can take it.
        self.app_takes_websocket = self.shape.kind != "django" and self.shape.takes("websocket")
        self.lifespans = 0  # lifespan scopes that reached this boundary (see watch_lifespan)
        self.state: dict[str, Any] = {}
        # Under a server that sends no lifespan (daphne), ASGI_LIFESPAN runs at the first
        # request; dropped (None) as soon as a lifespan scope arrives or it has run.
        self.fallback: LifespanFallback | None = None
        if lifespan is not None and edge.lifespan_fallback:
            self.fallback = LifespanFallback(lifespan, self, self.state)
        self.inflight = 0  # requests and websockets inside _pooled
        self._quiet: asyncio.Event | None = None  # set once none is left (at shutdown)
        self.freeze_heap = edge.gc_freeze  # at the first request (middleware_stack.heap)
        self.pool: threads.ExecutorPool | None = None
        if edge.thread_reuse and threads.EXECUTOR_SUPPORTED:
            self.pool = threads.ExecutorPool(
                edge.pool_idle,
                on_retire=_close_db_connections if self.is_django else None,
                grace=edge.pool_idle_timeout,
                max_threads=edge.pool_max,
                on_release=_reset_dirty_connections if self.is_django else None,
                hop_queue=edge.hop_queue,
            )
        elif edge.thread_reuse:
            _note_old_asgiref()
        if self.pool is not None:
            self.pool.on_all_back = self._note_quiet
        # HTTP requests go to Django's handler, or to its one-hop path.
        from middleware_stack.onehop import choose

        self.onehop, self.path_note = choose(app, self.shape, conf.one_hop, self.pool is None)
        self.http_app: ASGIApp = self.onehop or app

    def summary(self) -> str:
        if self.websocket is not None:
            ws = "routed"
        elif self.app_takes_websocket:
            ws = "to the router" if self.shape.kind == "router" else "to the app"
        else:
            ws = "refused"
        life = "answered" if self.answers_lifespan else "passed to app"
        if self.pool is None:
            pool = "per request (Django)" if self.is_django else "not pooled"
        elif self.is_django:
            pool = f"pooled (max {self.pool.max_threads}, idle<={self.pool.idle_max})"
        else:
            pool = (
                f"pooled for websockets (max {self.pool.max_threads}, idle<={self.pool.idle_max})"
            )
        text = f"lifespan {life}; websocket {ws}; threads {pool}"
        if self.shape.kind == "router":
            text += f"; Django at {self.shape.django}" if self.is_django else "; no Django found"
        if self.is_django:
            text += f"; requests {self.path_note}"
        else:
            text += f"; {NOT_DJANGO}"
        return text

    def note_not_django(self) -> None:
        """Say once per app type, at build time, what the boundary does not do here."""
        if self.is_django:
            return
        from middleware_stack.layer import dotted_path

        path = dotted_path(self.app)
        if path in _noted_not_django:
            return
        _noted_not_django.add(path)
        what = (
            "a known router with no Django in it"
            if self.shape.kind == "router"
            else ("neither Django nor a known router")
        )
        logger.warning(
            "build_stack: %s is %s, so the Django boundary %s; websocket connections go to it%s.",
            path,
            what,
            NOT_DJANGO,
            "" if self.lifespan is None else ", and ASGI_LIFESPAN answers lifespan",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if self.freeze_heap and kind != "lifespan":
            self.freeze_heap = False
            freeze_startup_heap()
        if self.fallback is not None and kind != "lifespan":
            await self._first_request(scope)
        if kind == "http":
            if self.state and "state" not in scope:
                scope = {**scope, "state": self.state.copy()}
            if self.is_django:
                # The one-hop path sends lowercase names itself (middleware_stack.response).
                out = send if self.onehop is not None else lowercase_headers(send)
                await self._pooled(self.http_app, scope, receive, out, False)
            else:  # nothing of Django's to fix: stay out of the way
                await self.app(scope, receive, send)
        elif kind == "websocket":
            app = self.websocket
            if app is None:
                if not self.app_takes_websocket:
                    await self._refuse_websocket(receive, send)
                    return
                app = self.app
            if self.state and "state" not in scope:
                scope = {**scope, "state": self.state.copy()}
            await self._pooled(app, scope, receive, send, True)
        elif kind == "lifespan" and self.answers_lifespan:
            self.fallback = None
            self.lifespans += 1
            await self._lifespan(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _first_request(self, scope: Scope) -> None:
        fallback = self.fallback
        assert fallback is not None
        fallback.owner = self.owner
        await fallback.run(scope)
        if fallback.failed is None:
            self.fallback = None

    async def _pooled(
        self, app: ASGIApp, scope: Scope, receive: Receive, send: Send, per_call: bool
    ) -> None:
        self.inflight += 1
        try:
            pool = self.pool
            if pool is None:
                await app(scope, receive, send)
                return
            # No thread yet: the lease takes one at the request's first sync call (after
            # Django has read the body), a websocket's only for each call.
            lease = pool.acquire(per_call=per_call, hop=not per_call and app is self.onehop)
            try:
                async with ThreadSensitiveContext(executor=lease):  # type: ignore[call-arg,unused-ignore]
                    if self.onehop is not None and app is self.onehop:
                        await self.onehop.serve(scope, receive, send, lease)
                    else:
                        await app(scope, receive, send)
            finally:
                pool.release(lease)
        finally:
            self.inflight -= 1
            if not self.inflight:
                self._note_quiet()

    def _is_quiet(self) -> bool:
        return not self.inflight and (self.pool is None or not self.pool.lent)

    def _note_quiet(self) -> None:
        if self._quiet is not None and self._is_quiet():
            self._quiet.set()

    async def _drain(self) -> None:
        """Wait, bounded, until requests in flight have unwound and given their threads back.

        A server cancels the requests still running when its graceful shutdown times
        out, and sends ``lifespan.shutdown`` straight after. A cancelled request needs
        loop turns to unwind (Django 6.1's handler cancels its task group and awaits it;
        a sync call it started runs to its end on the worker thread); stopping before
        then would exit the process with ``request_finished`` never sent and pooled
        threads never given back, nor their connections closed.
        """
        if self._is_quiet():
            return
        self._quiet = asyncio.Event()
        try:
            await asyncio.wait_for(self._quiet.wait(), DRAIN_TIMEOUT)
        except asyncio.TimeoutError:
            logger.warning(
                "ASGI lifespan shutdown: %d request(s) still running after %gs; "
                "shutting down without them.",
                max(self.inflight, self.pool.lent if self.pool is not None else 0),
                DRAIN_TIMEOUT,
            )
        finally:
            self._quiet = None

    async def _refuse_websocket(self, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] == "websocket.connect":
            logger.debug("websocket refused: no ASGI_WEBSOCKET_APPLICATION is configured")
            await send({"type": "websocket.close", "code": 1000})

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "lifespan.startup":
            return
        context: AbstractAsyncContextManager[Any] | None = None
        try:
            if self.lifespan is not None:
                context = self.lifespan(self.owner)
                state = await context.__aenter__()
                if state:
                    if "state" in scope:
                        scope["state"].update(state)
                    else:
                        self.state.update(state)
        except Exception as exc:
            logger.error("ASGI lifespan startup failed", exc_info=True)
            failed: str | None = f"{type(exc).__name__}: {exc}"
        else:
            failed = None
        # Sent outside the except block: a server that raises from send on a failure
        # (hypercorn) then logs its own error, not ours chained to it.
        if failed is not None:
            await send({"type": "lifespan.startup.failed", "message": failed})
            return
        await send({"type": "lifespan.startup.complete"})
        message = await receive()  # lifespan.shutdown
        await self._drain()  # before the user's lifespan closes what requests may use
        try:
            if context is not None:
                await context.__aexit__(None, None, None)
        except Exception as exc:
            logger.error("ASGI lifespan shutdown failed", exc_info=True)
            failed = f"{type(exc).__name__}: {exc}"
        finally:
            if self.pool is not None:
                pending = self.pool.close()
                if pending:  # the workers close their DB connections; bounded wait
                    await asyncio.wait(
                        [asyncio.wrap_future(f) for f in pending], timeout=CLOSE_TIMEOUT
                    )
        if failed is not None:
            await send({"type": "lifespan.shutdown.failed", "message": failed})
            return
        await send({"type": "lifespan.shutdown.complete"})


def _note_old_asgiref() -> None:
    global _warned_old_asgiref
    if not _warned_old_asgiref:
        _warned_old_asgiref = True
        import asgiref

        logger.debug(
            "ASGI_THREAD_REUSE: asgiref %s has no ThreadSensitiveContext(executor=...); "
            "Django starts its own threads per request (asgiref>=3.13 reuses them).",
            getattr(asgiref, "__version__", "?"),
        )
