"""Every application the benchmarks compare, built by name.

Two families:

- on Django (``A``, ``S0``, ``S``, ``H``, ``D``, ``E``): what a Django user runs today,
  and the same functions through ``build_stack``;
- around ``B``, a raw ASGI hello app (the floor): each contrib layer alone against its
  Starlette or minimal hand-written equivalent, and three-layer stacks.

The hand-written layers below are deliberately minimal, the way one would write them in
a project: they are the yardstick, not a straw man. ``HandTiming`` wraps ``send`` and
adds ``Server-Timing``; ``HandAuth`` reads one header from a trusted client address.

A builder raises :class:`Unavailable` when a layer it needs cannot be imported (a
contrib layer still being written, an optional package missing); the harness reports
such a configuration as "unavailable" instead of failing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from time import perf_counter
from typing import Any

from middleware_stack.types import ASGIApp, Message, Receive, Scope, Send

ORIGIN = "https://app.example.com"
USER = "alice"
#: One CORS policy, given to our layer, Starlette's and django-cors-headers' settings.
CORS_OPTIONS: dict[str, Any] = {
    "allow_origins": [ORIGIN],
    "allow_methods": ["DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT"],
    "allow_headers": ["authorization", "content-type", "x-requested-with"],
    "allow_credentials": True,
    "max_age": 600,
}
AUTH_HEADER = "X-Forwarded-User"
TRUSTED_PROXIES = ("127.0.0.1", "::1")

CONTRIB_TIMING = "middleware_stack.contrib.timing.TimingMiddleware"
CONTRIB_CORS = "middleware_stack.contrib.cors.CORSMiddleware"
CONTRIB_AUTH = "middleware_stack.contrib.auth.AuthPassthroughMiddleware"
CONTRIB_TRUSTED = "middleware_stack.contrib.auth.TrustedHeaderBackend"


class Unavailable(Exception):
    """A configuration cannot be built here (a layer is not importable)."""


# -- the floor ---------------------------------------------------------------------------


async def hello_app(scope: Scope, receive: Receive, send: Send) -> None:
    """B: the cheapest correct HTTP app. Fresh messages, since layers edit headers."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"5")],
        }
    )
    await send({"type": "http.response.body", "body": b"hello"})


# -- minimal hand-written equivalents ----------------------------------------------------


class HandTiming:
    """What a project writes for Server-Timing: a send wrapper, nothing else."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                dur = (perf_counter() - start) * 1000.0
                message["headers"] = [
                    *message.get("headers", ()),
                    (b"server-timing", b"total;dur=%.3f" % dur),
                ]
            await send(message)

        await self.app(scope, receive, timed_send)


_FLOOR: ContextVar[Any] = ContextVar("benchmarks_timing_floor", default=None)


class FloorTiming(HandTiming):
    """A lower bound, not a layer to use: the least any timing layer with the features
    the timing layer must have can do per request.

    It adds ``Server-Timing`` as :class:`HandTiming` does (the same lines, on purpose),
    but from a plain ``send`` (no coroutine of its own), publishes the request in a
    context variable (how view metrics find it, in tasks and in Django's worker
    threads) and calls the one ``on_record`` callback. It keeps no record, counts no
    bytes, times no first byte and handles no exception. Whatever it costs over B, a
    complete layer costs more.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = perf_counter()

        def timed_send(message: Message) -> Any:
            if message["type"] == "http.response.start":
                dur = (perf_counter() - start) * 1000.0
                message["headers"] = [
                    *message.get("headers", ()),
                    (b"server-timing", b"total;dur=%.3f" % dur),
                ]
            return send(message)

        token = _FLOOR.set(start)
        await self.app(scope, receive, timed_send)
        _FLOOR.reset(token)
        count_record(start)


class HandAuth:
    """What a project writes for a proxy's identity header: read it from a trusted peer.

    It neither strips the header from untrusted clients nor refuses duplicates, which
    the contrib layer does; it is the cheapest thing that works.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.header = AUTH_HEADER.lower().encode()
        self.trusted = frozenset(TRUSTED_PROXIES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            client = scope.get("client")
            if client and client[0] in self.trusted:
                for name, value in scope["headers"]:
                    if name == self.header:
                        scope = {**scope, "user": value.decode("latin-1")}
                        break
        await self.app(scope, receive, send)


def _noop_dispatch_class() -> Any:
    try:
        from starlette.middleware.base import BaseHTTPMiddleware
    except ImportError as exc:
        raise Unavailable(f"starlette is not installed ({exc})") from exc

    class NoopBaseHTTP(BaseHTTPMiddleware):  # type: ignore[misc,unused-ignore]
        async def dispatch(self, request: Any, call_next: Any) -> Any:
            return await call_next(request)

    return NoopBaseHTTP


def _starlette_cors(app: ASGIApp) -> ASGIApp:
    try:
        from starlette.middleware.cors import CORSMiddleware
    except ImportError as exc:
        raise Unavailable(f"starlette is not installed ({exc})") from exc
    return CORSMiddleware(app, **CORS_OPTIONS)  # type: ignore[arg-type,unused-ignore]


# -- our layers --------------------------------------------------------------------------

RECORDS = [0]


def count_record(record: Any) -> None:
    """The one ``on_record`` callback: as cheap as a metrics counter increment."""
    RECORDS[0] += 1


def _import(dotted: str) -> Any:
    from importlib import import_module

    module, _, name = dotted.rpartition(".")
    try:
        return getattr(import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise Unavailable(f"{dotted} is not importable yet ({type(exc).__name__}: {exc})") from exc


def contrib_entries() -> list[Any]:
    """timing (outermost), CORS, auth: the ``ASGI_MIDDLEWARE`` list of configuration S."""
    return [
        (_import(CONTRIB_TIMING), {"on_record": [count_record]}),
        (_import(CONTRIB_CORS), {**CORS_OPTIONS, "debug": False}),
        (_import(CONTRIB_AUTH), {"backends": [_trusted_backend()]}),
    ]


def _trusted_backend() -> Any:
    return _import(CONTRIB_TRUSTED)(header=AUTH_HEADER, trusted_proxies=list(TRUSTED_PROXIES))


def ours_timing(app: ASGIApp) -> ASGIApp:
    return _import(CONTRIB_TIMING)(app, on_record=[count_record])  # type: ignore[no-any-return]


def ours_cors(app: ASGIApp) -> ASGIApp:
    return _import(CONTRIB_CORS)(app, **CORS_OPTIONS, debug=False)  # type: ignore[no-any-return]


def ours_auth(app: ASGIApp) -> ASGIApp:
    return _import(CONTRIB_AUTH)(app, backends=[_trusted_backend()])  # type: ignore[no-any-return]


#: Django boundaries built for the benchmarks, so a run can retire their idle threads.
BOUNDARIES: list[Any] = []


def close_pools() -> None:
    """Retire the idle worker threads of every boundary built so far, and shut the WSGI
    floor cases' pools down."""
    from benchmarks import wsgi

    wsgi.close_pools()
    while BOUNDARIES:
        pool = getattr(BOUNDARIES.pop(), "pool", None)
        if pool is not None:
            pool.close()


def _build_stack(app: ASGIApp, entries: list[Any], checks: str = "off") -> ASGIApp:
    from middleware_stack import build_stack

    try:
        stack = build_stack(app, entries, checks=checks)
    except ImportError as exc:  # e.g. the runtime-checks package is not there yet
        raise Unavailable(f"checks={checks!r} is not importable yet ({exc})") from exc
    BOUNDARIES.append(getattr(stack, "boundary", None))
    return stack


def _unwatched(app: ASGIApp, entries: list[Any]) -> ASGIApp:
    """checks='warn' with blocking attribution off: what the protocol checks cost alone."""
    from django.test import override_settings

    with override_settings(ASGI_MIDDLEWARE_BLOCKING_MS=0):
        return _build_stack(app, entries, "warn")


def _manual_stack(app: ASGIApp) -> ASGIApp:
    """The layers of ``S`` composed by hand around the same Django boundary."""
    from middleware_stack.boundary import DjangoBoundary

    boundary = DjangoBoundary(app)
    BOUNDARIES.append(boundary)
    return ours_timing(ours_cors(ours_auth(boundary)))


# -- Django ------------------------------------------------------------------------------


def django_app(middleware: list[str] | None = None, stack: bool = False) -> ASGIApp:
    """A fresh ``get_asgi_application()`` with ``MIDDLEWARE`` (default empty), in
    ``build_stack(..., [])`` if ``stack``.

    Django reads ``MIDDLEWARE`` once, when the handler is built, so each configuration
    gets its own list; so does the stack's one-hop path, so it is built under it too.
    """
    from django.core.asgi import get_asgi_application
    from django.test import override_settings

    with override_settings(MIDDLEWARE=middleware or []):
        app: ASGIApp = get_asgi_application()  # type: ignore[assignment]
        return _build_stack(app, []) if stack else app


def _django_cors_headers() -> ASGIApp:
    try:
        import corsheaders.middleware  # noqa: F401
    except ImportError as exc:
        raise Unavailable(f"django-cors-headers is not installed ({exc})") from exc
    return django_app(["corsheaders.middleware.CorsMiddleware"])


def _startproject(stack: bool = False) -> ASGIApp:
    from benchmarks.django_settings import STARTPROJECT_MIDDLEWARE

    return django_app(STARTPROJECT_MIDDLEWARE, stack)


def _wsgi(floor: bool, startproject: bool = False) -> ASGIApp:
    from benchmarks.wsgi import build

    return build(floor, startproject)


def _startproject_bound(threads: int) -> ASGIApp:
    from django.test import override_settings

    with override_settings(ASGI_THREAD_POOL_MAX=threads):
        return _startproject(stack=True)


def _startproject_no_hop_queue() -> ASGIApp:
    """S0-mw with each one-hop request taking a thread of its own, as before the hop queue."""
    from django.test import override_settings

    with override_settings(ASGI_HOP_QUEUE=False):
        return _startproject(stack=True)


def _sketch() -> ASGIApp:
    from benchmarks.sketch import build

    return build()


def _floor_checked(app: ASGIApp) -> ASGIApp:
    """The layers of ``S/B-warn`` around the same boundary, in the leanest checker."""
    from benchmarks.floor_checks import floor_stack
    from middleware_stack.boundary import DjangoBoundary

    boundary = DjangoBoundary(app)
    BOUNDARIES.append(boundary)
    return floor_stack([ours_timing, ours_cors, ours_auth], boundary)


def _hand_built(app: ASGIApp) -> ASGIApp:
    return HandTiming(_starlette_cors(HandAuth(app)))


#: name -> (what it is, builder(inner) where inner is the raw app for B-family apps)
DJANGO_APPS: dict[str, tuple[str, Callable[[], ASGIApp]]] = {
    "A": ("bare Django get_asgi_application()", lambda: django_app()),
    "S0": ("build_stack(django, []): Django with pooled threads", lambda: _build_stack(django_app(), [])),
    "S": ("build_stack(django, [timing, cors, auth])", lambda: _build_stack(django_app(), contrib_entries())),
    "H": ("Django + hand-built Starlette CORS, timing, auth", lambda: _hand_built(django_app())),
    "D": ("django-cors-headers in MIDDLEWARE", _django_cors_headers),
    "E": ("no-op Starlette BaseHTTPMiddleware around Django", lambda: _noop_dispatch_class()(django_app())),
    "A-mw": ("bare Django, startproject's MIDDLEWARE", _startproject),
    "S0-mw": ("build_stack(django, []), startproject's MIDDLEWARE", lambda: _startproject(stack=True)),
    "W": ("Django WSGIHandler called directly (plain WSGI)", lambda: _wsgi(False)),
    "W-floor": ("the floor: WSGIHandler through one run_in_executor hand-off", lambda: _wsgi(True)),
    "W-mw": ("WSGIHandler directly, startproject's MIDDLEWARE", lambda: _wsgi(False, True)),
    "W-floor-mw": ("the floor, startproject's MIDDLEWARE", lambda: _wsgi(True, True)),
    "S0-mw-t1": ("S0-mw with ASGI_THREAD_POOL_MAX = 1 (one sync request at a time, as gunicorn sync)", lambda: _startproject_bound(1)),
    "S0-mw-noq": ("S0-mw without the hop queue (a thread per request in flight)", _startproject_no_hop_queue),
    "sketch-mw": ("issue 21's one-hop sketch (a bound), startproject's MIDDLEWARE", lambda: _sketch()),
}  # fmt: skip

RAW_APPS: dict[str, tuple[str, Callable[[ASGIApp], ASGIApp]]] = {
    "B": ("raw ASGI hello app (the floor)", lambda app: app),
    "B+stack": ("build_stack(B, []): the Django boundary alone", lambda app: _build_stack(app, [])),
    "cors": ("contrib CORSMiddleware", ours_cors),
    "cors-starlette": ("Starlette CORSMiddleware", _starlette_cors),
    "timing": ("contrib TimingMiddleware, one on_record", ours_timing),
    "timing-hand": ("hand-written timing (send wrapper)", HandTiming),
    "timing-floor": ("lower bound: header + contextvar + one callback", FloorTiming),
    "auth": ("contrib AuthPassthrough + TrustedHeaderBackend", ours_auth),
    "auth-hand": ("hand-written header-reading auth", HandAuth),
    "S/B": ("build_stack(B, [timing, cors, auth])", lambda app: _build_stack(app, contrib_entries())),
    "S/B-layers": ("contrib timing(cors(auth(B))), no boundary", lambda app: ours_timing(ours_cors(ours_auth(app)))),
    "S/B-manual": ("contrib layers composed by hand around the boundary", _manual_stack),
    "H/B": ("HandTiming(Starlette CORS(HandAuth(B)))", _hand_built),
    "S/B-warn": ("build_stack(B, [timing, cors, auth], checks='warn')", lambda app: _build_stack(app, contrib_entries(), "warn")),
    "S/B-strict": ("build_stack(B, [timing, cors, auth], checks='strict')", lambda app: _build_stack(app, contrib_entries(), "strict")),
    "S/B-warn-noblock": ("S/B-warn with ASGI_MIDDLEWARE_BLOCKING_MS = 0", lambda app: _unwatched(app, contrib_entries())),
    "S/B-warn-floor": ("lower bound: S/B-warn's checks in the leanest checker", _floor_checked),
}  # fmt: skip


def describe(name: str) -> str:
    entry = DJANGO_APPS.get(name) or RAW_APPS.get(name)
    return entry[0] if entry else name


def build_app(name: str, inner: ASGIApp | None = None) -> ASGIApp:
    """Build the application called ``name``; raw-app builders wrap ``inner`` (default B)."""
    if name in DJANGO_APPS:
        return DJANGO_APPS[name][1]()
    return RAW_APPS[name][1](hello_app if inner is None else inner)


# -- settings ----------------------------------------------------------------------------

#: What the harness needs from Django's settings when it runs inside another project's
#: settings (the smoke test runs under ``tests.settings``).
SETTINGS_OVERRIDES: dict[str, Any] = {
    "ROOT_URLCONF": "benchmarks.django_app",
    "ALLOWED_HOSTS": ["*"],
    "DEBUG": False,
    "ASGI_MIDDLEWARE": [],
    "ASGI_MIDDLEWARE_CHECKS": "off",
    "ASGI_THREAD_REUSE": True,
}


@contextlib.contextmanager
def django_environment() -> Iterator[None]:
    """Django set up with the benchmark settings for the duration of a run.

    The command line uses :mod:`benchmarks.django_settings`; called from inside a
    configured project (the smoke test), the needed settings are overridden instead.
    """
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.django_settings")
    import django
    from django.conf import settings

    django.setup(set_prefix=False)
    if settings.ROOT_URLCONF == "benchmarks.django_app":
        yield
        return
    from django.test import override_settings

    from benchmarks import django_settings as ours

    cors = {k: getattr(ours, k) for k in dir(ours) if k.startswith("CORS_")}
    with override_settings(**SETTINGS_OVERRIDES, **cors):
        yield
