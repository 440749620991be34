"""The Django handler the test client puts inside the stack, in place of Django's.

It is Django's own ``ASGIHandler`` with what Django's test client handlers add:

- the request's sync work runs where Django's ``AsyncClientHandler`` would run it. No
  ``ThreadSensitiveContext`` is entered, so thread-sensitive code goes to the test's
  thread when there is one above (the sync :class:`~middleware_stack.test.Client`,
  ``async def`` tests in Django's ``TestCase``), else to asgiref's one sync thread, the
  same one the test's own ``sync_to_async`` calls use. A test's database connection,
  inside its ``TestCase`` transaction, is the one the view uses;
- ``close_old_connections`` is kept off ``request_started`` and ``request_finished``
  while a request runs: it would close (or mark for rollback) the test's connection;
- CSRF checks are skipped unless the client enforces them, as Django's client does;
- the ``HttpRequest`` Django built and the ``HttpResponse`` the view returned are
  recorded, for ``response.wsgi_request`` and for the response's own class;
- each client gets its own handler, which loads ``MIDDLEWARE`` at the client's first
  request, as each of Django's clients does: middleware that keeps settings in its
  instance (Django's CSRF middleware caches ``CSRF_TRUSTED_ORIGINS``) then sees the
  settings of the test that made the client, not those of an earlier test.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.core.handlers.asgi import ASGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from middleware_stack.types import Receive, Scope, Send

__all__ = ["Capture", "ClientDispatch", "ClientHandlerMixin", "capture", "client_handler"]


class Capture:
    """What Django made of one client request; filled in by the handler."""

    __slots__ = ("enforce_csrf_checks", "owner", "request", "response")

    def __init__(self, enforce_csrf_checks: bool, owner: Any = None) -> None:
        self.enforce_csrf_checks = enforce_csrf_checks
        self.owner = owner  # the client: whose handler serves the request
        self.request: Any = None
        self.response: Any = None


#: The current client request's :class:`Capture` (tasks the layers start inherit it).
capture: ContextVar[Capture | None] = ContextVar("middleware_stack_test_capture", default=None)

_quiet_lock = threading.Lock()
_quiet_depth = 0


@contextmanager
def quiet_connections() -> Iterator[None]:
    """``close_old_connections`` off the request signals while any client request runs."""
    global _quiet_depth
    with _quiet_lock:
        _quiet_depth += 1
        if _quiet_depth == 1:
            request_started.disconnect(close_old_connections)
            request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                request_started.connect(close_old_connections)
                request_finished.connect(close_old_connections)


class ClientHandlerMixin:
    """Mixed into ``ASGIHandler`` (or the project's subclass of it); see the module."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # Django's own refusal, word for word
            raise ValueError(
                "Django can only handle ASGI/HTTP connections, not {}.".format(scope["type"])
            )
        with quiet_connections():
            await self.handle(scope, receive, send)  # type: ignore[attr-defined]

    def create_request(self, scope: Scope, body_file: Any) -> Any:
        request, error_response = super().create_request(scope, body_file)  # type: ignore[misc]
        current = capture.get()
        if request is not None and current is not None:
            request._dont_enforce_csrf_checks = not current.enforce_csrf_checks
            current.request = request
        return request, error_response

    async def get_response_async(self, request: Any) -> Any:
        response = await super().get_response_async(request)  # type: ignore[misc]
        current = capture.get()
        if current is not None and request is current.request:
            current.response = response
        return response


_classes: dict[type, type] = {}


def client_handler(cls: type[ASGIHandler] = ASGIHandler) -> ASGIHandler:
    """A new handler of ``cls`` with :class:`ClientHandlerMixin` (middleware loaded now)."""
    try:
        mixed = _classes[cls]
    except KeyError:
        mixed = _classes[cls] = type(f"Client{cls.__name__}", (ClientHandlerMixin, cls), {})
    handler: ASGIHandler = mixed()
    return handler


class ClientDispatch(ASGIHandler):
    """Where Django sits in the client's stack: each client's own handler of ``cls``.

    An ``ASGIHandler`` to the stack (so the boundary treats it as Django), but it loads
    no middleware itself: ``ASGIHandler.__init__`` is not called.
    """

    def __init__(self, cls: type[ASGIHandler] = ASGIHandler) -> None:
        self.handler_class = cls
        self._handlers: weakref.WeakKeyDictionary[Any, ASGIHandler] = weakref.WeakKeyDictionary()
        self._shared: ASGIHandler | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # type: ignore[override]
        current = capture.get()
        owner = current.owner if current is not None else None
        if owner is None:
            if self._shared is None:
                self._shared = client_handler(self.handler_class)
            handler = self._shared
        else:
            handler = self._handlers.get(owner)  # type: ignore[assignment]
            if handler is None:
                handler = self._handlers[owner] = client_handler(self.handler_class)
        await handler(scope, receive, send)  # type: ignore[arg-type]
