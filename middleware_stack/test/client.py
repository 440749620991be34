"""``Client`` and ``AsyncClient``: Django's test clients, with every request sent
through the ASGI stack.

Django's clients call Django's handler directly, so layers in ``ASGI_MIDDLEWARE`` never
see their requests. These subclasses keep every method, argument and attribute of
Django's, and change one thing: the request becomes an ASGI scope, the stack answers
it, and the response is what came back over ASGI (status, headers, cookies, body),
carried by the response object the view returned (so ``templates``, ``context``,
``context_data``, ``url`` and ``json()`` still work), or by a plain ``HttpResponse``
when a layer answered without calling Django.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from functools import partial
from http.cookies import SimpleCookie
from typing import Any

from asgiref.sync import async_to_sync
from django.core.signals import got_request_exception
from django.http import HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase, ResponseHeaders
from django.test import client as django_client
from django.test import signals as test_signals
from django.urls import resolve
from django.utils.functional import SimpleLazyObject

from middleware_stack.exceptions import ASGIProtocolError
from middleware_stack.test import application as _application
from middleware_stack.test.exchange import (
    WSGI_KEYS,
    Exchange,
    run,
    scope_from_environ,
    scope_from_request,
)
from middleware_stack.test.handler import Capture, capture
from middleware_stack.test.websocket import Websocket
from middleware_stack.types import ASGIApp

__all__ = ["AsyncClient", "Client"]

_NO_BODY_STATUS = frozenset({204, 304})


class StackClientMixin:
    """What both clients share: which stack, and turning its answer into a response."""

    #: ASGI scope of the last request (as the stack received it).
    scope: dict[str, Any] | None = None

    def _setup_stack(self, application: Any, checks: str | None) -> None:
        self.application = application
        self.checks = _application.CHECKS if checks is None else checks
        self._stack: tuple[int, ASGIApp] | None = None

    @property
    def stack(self) -> ASGIApp:
        """The ASGI application requests go to now (rebuilt after a settings change)."""
        generation = _application.generation()
        cached = self._stack
        if cached is None or cached[0] != generation:
            app = _application.application_for(self.application, self.checks)
            self._stack = cached = (generation, app)
        return cached[1]

    async def _exchange(
        self, app: ASGIApp, scope: dict[str, Any], body: bytes
    ) -> tuple[Exchange, Capture]:
        self.scope = scope
        current = Capture(getattr(self, "_enforce_csrf_checks", False), self)
        token = capture.set(current)
        try:
            try:
                exchange = await run(app, scope, body)
            except ASGIProtocolError:
                raise  # strict checks: a protocol fault always fails the test
            except Exception:
                if getattr(self, "raise_request_exception", True):
                    raise
                exchange = _server_error(sys.exc_info())
                client: Any = self
                client.exc_info = sys.exc_info()
        finally:
            capture.reset(token)
        return exchange, current

    def _response(
        self, exchange: Exchange, current: Capture, method: str, async_stream: bool
    ) -> HttpResponseBase:
        start = exchange.start
        if start is None:
            raise AssertionError(
                f"The stack returned without sending http.response.start "
                f"(it sent {[m.get('type') for m in exchange.messages]!r})."
            )
        status = int(start["status"])
        original = current.response
        streaming = original.streaming if original is not None else exchange.streamed
        if original is not None:
            response: Any = original
        elif streaming:
            response = StreamingHttpResponse(())
        else:
            response = HttpResponse()
        response.status_code = status
        headers: dict[str, tuple[str, str]] = {}  # lowercase name: (name as sent, value)
        cookies: SimpleCookie = SimpleCookie()
        for raw_name, raw_value in start.get("headers", ()):
            name = bytes(raw_name).decode("latin-1")
            value = bytes(raw_value).decode("latin-1")
            key = name.lower()
            if key == "set-cookie":
                cookies.load(value)
            elif key in headers:  # several lines: one value, as HTTP folds them
                first, earlier = headers[key]
                headers[key] = (first, f"{earlier}, {value}")
            else:
                headers[key] = (name, value)
        response.headers = ResponseHeaders(dict(headers.values()))
        response.cookies = cookies
        chunks = exchange.chunks
        if method == "HEAD" or 100 <= status < 200 or status in _NO_BODY_STATUS:
            chunks = []  # what servers do, and Django's client too
        if streaming:
            response.streaming_content = _aiter(chunks) if async_stream else list(chunks)
        else:
            response.content = b"".join(chunks)
        if "Location" in response.headers and not hasattr(type(response), "url"):
            response.url = response.headers["Location"]
        request = current.request
        response.wsgi_request = request
        response.asgi_request = request
        response.asgi_messages = exchange.messages
        result: HttpResponseBase = response
        return result

    def _finish(
        self, response: Any, request: dict[str, Any], path: str, templates: dict[str, Any]
    ) -> Any:
        """What Django's ``Client.request`` does after the handler, unchanged."""
        self.check_exception(response)  # type: ignore[attr-defined]
        response.client = self
        response.request = request
        response.templates = templates.get("templates", [])
        response.context = templates.get("context")
        response.json = partial(self._parse_json, response)  # type: ignore[attr-defined]
        urlconf = getattr(response.wsgi_request, "urlconf", None)
        response.resolver_match = SimpleLazyObject(lambda: resolve(path, urlconf=urlconf))
        if response.context and len(response.context) == 1:
            response.context = response.context[0]
        if response.cookies:
            self.cookies.update(response.cookies)  # type: ignore[attr-defined]
        return response


async def _aiter(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def _server_error(exc_info: Any) -> Exchange:
    """What an ASGI server answers when the app raises before responding."""
    exchange = Exchange()
    exchange.start = {
        "type": "http.response.start",
        "status": 500,
        "headers": [(b"content-type", b"text/plain; charset=utf-8")],
    }
    exchange.chunks.append(b"Internal Server Error")
    return exchange


class _Signals:
    """Django's client connects these two for the span of one request."""

    def __init__(self, client: Any, request: dict[str, Any]) -> None:
        self.data: dict[str, Any] = {}
        self.client = client
        self.template_uid = f"template-render-{id(request)}"
        self.exception_uid = f"request-exception-{id(request)}"

    def __enter__(self) -> dict[str, Any]:
        # Held here: the signal keeps only a weak reference to its receiver.
        store = django_client.store_rendered_templates  # type: ignore[attr-defined]
        self.on_render = partial(store, self.data)
        test_signals.template_rendered.connect(self.on_render, dispatch_uid=self.template_uid)
        got_request_exception.connect(self.client.store_exc_info, dispatch_uid=self.exception_uid)
        return self.data

    def __exit__(self, *exc: Any) -> None:
        test_signals.template_rendered.disconnect(dispatch_uid=self.template_uid)
        got_request_exception.disconnect(dispatch_uid=self.exception_uid)


class Client(StackClientMixin, django_client.Client):
    """Django's ``Client``, through the stack. ``application``: an ASGI app or dotted
    path (default ``ASGI_APPLICATION``, else ``build_stack(get_asgi_application())``);
    ``checks``: runtime checks mode (default ``"strict"``)."""

    def __init__(
        self,
        enforce_csrf_checks: bool = False,
        raise_request_exception: bool = True,
        *,
        application: Any = None,
        checks: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(enforce_csrf_checks, raise_request_exception, **kwargs)
        self._enforce_csrf_checks = enforce_csrf_checks
        self._setup_stack(application, checks)

    def request(self, **request: Any) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError(
                "middleware_stack.test.Client runs the stack in an event loop of its own, "
                "and this thread is already running one (an async test). Use "
                "middleware_stack.test.AsyncClient (the async_stack_client fixture) and "
                "await its methods."
            )
        environ = self._base_environ(**request)  # type: ignore[attr-defined]
        scope, body = scope_from_environ(environ)
        with _Signals(self, request) as templates:
            exchange, current = async_to_sync(self._exchange)(self.stack, scope, body)
        response = self._response(exchange, current, scope["method"], async_stream=False)
        return self._finish(response, request, environ.get("PATH_INFO", "/"), templates)


class AsyncClient(StackClientMixin, django_client.AsyncClient):
    """Django's ``AsyncClient``, through the stack (arguments as :class:`Client`).

    ``REMOTE_ADDR``, ``REMOTE_PORT``, ``SCRIPT_NAME``, ``SERVER_NAME``, ``SERVER_PORT``,
    ``HTTP_HOST`` and ``wsgi.url_scheme`` keyword arguments set the scope's ``client``,
    ``root_path``, ``server``, ``host`` and ``scheme``, as they set the environ for
    :class:`Client` (Django's ``AsyncClient`` would send them as headers).
    """

    def __init__(
        self,
        enforce_csrf_checks: bool = False,
        raise_request_exception: bool = True,
        *,
        application: Any = None,
        checks: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(enforce_csrf_checks, raise_request_exception, **kwargs)
        self._enforce_csrf_checks = enforce_csrf_checks
        self._setup_stack(application, checks)
        self._wsgi: dict[str, Any] = {}

    def generic(self, method: str, path: Any, *args: Any, **extra: Any) -> Any:
        wsgi = {k: extra.pop(k) for k in list(extra) if k in WSGI_KEYS}
        defaults = {k: v for k, v in self.defaults.items() if k in WSGI_KEYS}
        self._wsgi = {**defaults, **wsgi}
        kept = self.defaults
        self.defaults = {k: v for k, v in kept.items() if k not in WSGI_KEYS}  # type: ignore[assignment]
        try:
            return super().generic(method, path, *args, **extra)
        finally:
            self.defaults = kept

    def _base_scope(self, **request: Any) -> dict[str, Any]:
        defaults = self.defaults
        self.defaults = {k: v for k, v in defaults.items() if k not in WSGI_KEYS}  # type: ignore[assignment]
        try:
            scope: dict[str, Any] = super()._base_scope(**request)  # type: ignore[misc]
        finally:
            self.defaults = defaults
        return scope

    def websocket(self, path: str, **kwargs: Any) -> Websocket:
        """A :class:`~middleware_stack.test.Websocket` through this client's stack, sending
        its cookies (so ``force_login`` carries over); ``await ws.connect()`` opens it."""
        cookies = "; ".join(sorted(f"{m.key}={m.coded_value}" for m in self.cookies.values()))
        headers = kwargs.pop("headers", None) or {}
        items = list(headers.items()) if isinstance(headers, dict) else list(headers)
        if cookies:
            items.append(("cookie", cookies))
        return Websocket(path, headers=items, app=self.stack, **kwargs)

    async def request(self, **request: Any) -> Any:
        wsgi, self._wsgi = self._wsgi, {}
        scope, body = scope_from_request(self._base_scope(**request), wsgi)
        with _Signals(self, request) as templates:
            exchange, current = await self._exchange(self.stack, scope, body)
        original = current.response
        async_stream = bool(original is not None and original.streaming and original.is_async)
        response = self._response(exchange, current, scope["method"], async_stream)
        # Django's redirect following reads the WSGI names off response.request.
        request = {
            **request,
            "PATH_INFO": request.get("path", "/"),
            "REQUEST_METHOD": scope["method"],
        }
        return self._finish(response, request, request["PATH_INFO"], templates)
