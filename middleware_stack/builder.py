"""Layer specs -> a composed :class:`Stack`.

This module composes; what is checked about each layer before the first request
(imports and options in :mod:`middleware_stack.entries`, order, duplicates and what
each factory returns in :mod:`middleware_stack.validation`) lives apart from it.
``inspect_stack`` runs the same composition in collecting mode for ``manage.py check``.
"""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal, cast

from middleware_stack import boundary as _boundary
from middleware_stack.entries import ALL_SCOPES, Layer, check_options, dotted_path, parse_entry
from middleware_stack.exceptions import StackConfigurationError, StackWarning
from middleware_stack.lifespan_watch import watch_lifespan
from middleware_stack.settings import blocking_ms as _blocking_ms
from middleware_stack.settings import read_settings
from middleware_stack.types import ASGIApp, Receive, Scope, Send
from middleware_stack.validation import (
    ASGI2Adapter,
    BuildResult,
    Findings,
    as_asgi3,
    basehttp_warning,
    check_duplicates,
    check_not_django_middleware,
    check_order,
    is_async_callable,
    located,
)

__all__ = [
    "ASGI2Adapter",
    "BuildResult",
    "Stack",
    "as_asgi3",
    "build_stack",
    "inspect_stack",
    "is_async_callable",
]

ChecksMode = Literal["off", "warn", "strict"]
#: ``wrap(app, index, path)``: wraps each layer (and the app) in a runtime check.
Wrapper = Callable[[ASGIApp, "int | None", str], ASGIApp]


class ScopeFilter:
    """Send only ``scopes`` through ``app``; every other scope type skips to ``inner``.

    Only inserted for layers listed with a narrower ``scopes``; a layer that sees every
    scope type is called directly, so the key costs nothing when unused.
    """

    __slots__ = ("app", "inner", "scopes")

    def __init__(self, app: ASGIApp, inner: ASGIApp, scopes: frozenset[str]) -> None:
        self.app = app
        self.inner = inner
        self.scopes = scopes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in self.scopes:
            await self.app(scope, receive, send)
        else:
            await self.inner(scope, receive, send)


class Stack:
    """The composed ASGI 3 application returned by :func:`build_stack`.

    ``layers`` is outermost first; ``app`` is the wrapped (innermost) application.
    """

    def __init__(
        self,
        chain: ASGIApp,
        layers: tuple[Layer, ...],
        app: ASGIApp,
        checks: ChecksMode,
        boundary: _boundary.DjangoBoundary,
        instances: tuple[Any, ...] = (),
        guard: Any = None,
    ) -> None:
        self._chain = chain
        self.guard = guard
        self.layers = layers
        self.app = app
        self.checks = checks
        self.boundary = boundary
        self.instances = instances
        # build_stack's arguments (None = read from settings), so the test client can rebuild.
        self._arguments: dict[str, Any] = {}
        # With layers outside the boundary, lifespan may not reach it (see watch_lifespan).
        self._watch_lifespan = bool(layers) and boundary.answers_lifespan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._watch_lifespan:
            try:
                lifespan = scope["type"] == "lifespan"
            except Exception:  # not a scope: the layers (or the runtime checks) say so
                lifespan = False
            if lifespan:
                self.boundary.fallback = None  # the server sends lifespan: no fallback
                await watch_lifespan(self._chain, self.boundary, scope, receive, send)
                return
        await self._chain(scope, receive, send)

    def check_report(self) -> dict[str, Any]:
        """Per-layer runtime-check counts since start (empty when checks are off)."""
        return self.guard.report() if self.guard is not None else {}

    def describe(self) -> str:
        """A readable table of the stack, outermost first."""
        rows = [("#", "name", "path", "scopes", "options")]
        for i, layer in enumerate(self.layers):
            scopes = "all" if layer.scopes == ALL_SCOPES else ",".join(sorted(layer.scopes))
            opts = ", ".join(f"{k}={v!r}" for k, v in layer.options.items()) or "-"
            rows.append((str(i), layer.name, layer.path, scopes, opts))
        rows.append(("*", "app", dotted_path(self.app), "all", self.boundary.summary()))
        widths = [max(len(r[c]) for r in rows) for c in range(4)]
        lines = [f"ASGI middleware stack (checks={self.checks}), outermost first:"]
        for r in rows:
            cells = [r[c].ljust(widths[c]) for c in range(4)] + [r[4]]
            lines.append("  ".join(cells).rstrip())
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Stack {[layer.name for layer in self.layers]} around {dotted_path(self.app)}>"


def _construct(layer: Layer, inner: ASGIApp, findings: Findings) -> Any:
    where: dict[str, Any] = {"index": layer.index, "path": layer.path}
    assert layer.factory is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            instance = layer.factory(inner, **layer.options)
        except StackConfigurationError as exc:
            if exc.index is None:
                exc = located(exc, layer)
            raise exc from exc.__cause__
        except Exception as exc:
            raise StackConfigurationError(
                f"Constructing the layer raised {type(exc).__name__}: {exc}",
                hint="Check the entry's options; the original traceback is chained.",
                id="middleware_stack.E009",
                **where,
            ) from exc
    for w in caught:
        message = w.message
        if isinstance(message, StackWarning):
            findings.warn(located(message, layer) if message.index is None else message)
        else:
            warnings.warn_explicit(message, w.category, w.filename, w.lineno)
    return instance


def _resolve(value: Any, setting: str) -> Any:
    if isinstance(value, str):
        from middleware_stack.entries import import_object

        try:
            return import_object(value)
        except StackConfigurationError as exc:
            raise StackConfigurationError(
                f"{setting} = {value!r}: {exc.msg}", hint=exc.hint, id="middleware_stack.E010"
            ) from exc.__cause__
    return value


def _compose(
    app: ASGIApp,
    entries: Iterable[Any],
    checks: ChecksMode,
    lifespan: Any,
    websocket: Any,
    findings: Findings,
    wrap: Wrapper | None = None,
) -> tuple[ASGIApp, _boundary.DjangoBoundary]:
    if isinstance(entries, str | bytes) or not isinstance(entries, Iterable):
        raise StackConfigurationError(
            f"ASGI_MIDDLEWARE must be a list of entries, not {type(entries).__name__}.",
            hint="Write ASGI_MIDDLEWARE = ['pkg.module.Factory', ...].",
            id="middleware_stack.E001",
        )
    if isinstance(entries, Mapping | set | frozenset):
        # A dict would be iterated as its keys (dropping every entry's options), a set
        # in no particular order: the order of the layers is the point of the setting.
        raise StackConfigurationError(
            f"ASGI_MIDDLEWARE must be a list of entries, not a {type(entries).__name__}: "
            "a list is ordered, its first entry the outermost layer.",
            hint="Write ASGI_MIDDLEWARE = ['pkg.module.Factory', ('pkg.module.Other', "
            "{'option': value}), ...].",
            id="middleware_stack.E001",
        )
    layers: list[Layer] = []
    for index, entry in enumerate(entries):
        try:
            layer = parse_entry(entry, index)
            check_not_django_middleware(layer)
            check_options(layer)
        except StackConfigurationError as exc:
            findings.error(exc)
            continue
        if layer.enabled:
            layers.append(layer)
    check_order(layers, findings)
    check_duplicates(layers, findings)

    lifespan = _resolve(lifespan, "ASGI_LIFESPAN")
    if lifespan is not None and not callable(lifespan):
        raise StackConfigurationError(
            f"ASGI_LIFESPAN must be a callable lifespan(app) returning an async context "
            f"manager, not {lifespan!r}.",
            hint="Decorate an async generator function with contextlib.asynccontextmanager.",
            id="middleware_stack.E010",
        )
    ws_app: ASGIApp | None = None
    ws = _resolve(websocket, "ASGI_WEBSOCKET_APPLICATION")
    if ws is not None:
        if not callable(ws):
            raise StackConfigurationError(
                f"ASGI_WEBSOCKET_APPLICATION = {ws!r} is not an ASGI application.",
                hint="Give the dotted path of an ASGI app (or the app itself), e.g. "
                "'myproject.routing.application'; None refuses websockets.",
                id="middleware_stack.E010",
            )
        where: dict[str, Any] = {"path": "ASGI_WEBSOCKET_APPLICATION"}
        ws_app, w = as_asgi3(ws, where, "ASGI_WEBSOCKET_APPLICATION")
        if w is not None:
            findings.warn(w)
    boundary = _boundary.DjangoBoundary(app, lifespan=lifespan, websocket=ws_app)

    chain: ASGIApp = boundary if wrap is None else wrap(boundary, None, dotted_path(app))
    built: list[tuple[Layer, Any]] = []
    for layer in reversed(layers):
        try:
            instance = _construct(layer, chain, findings)
            where = {"index": layer.index, "path": layer.path}
            asgi3, w = as_asgi3(instance, where, "The factory")
        except StackConfigurationError as exc:
            findings.error(exc)
            continue
        for warning in (w, basehttp_warning(instance, layer)):
            if warning is not None:
                findings.warn(warning)
        if wrap is not None:
            asgi3 = wrap(asgi3, layer.index, layer.path)
        chain = asgi3 if layer.scopes == ALL_SCOPES else ScopeFilter(asgi3, chain, layer.scopes)
        built.append((layer, instance))
    built.reverse()
    findings.result.layers = [layer for layer, _ in built]
    findings.result.instances = [instance for _, instance in built]
    return chain, boundary


def _checks_mode(value: Any) -> ChecksMode:
    if value not in ("off", "warn", "strict"):
        raise StackConfigurationError(
            f"ASGI_MIDDLEWARE_CHECKS = {value!r} is not a checks mode.",
            hint="Use 'off', 'warn' or 'strict' ('warn' in development, 'off' in production).",
            id="middleware_stack.E010",
        )
    return cast(ChecksMode, value)


def build_stack(
    app: Callable[..., Awaitable[None]],
    middleware: Iterable[Any] | None = None,
    *,
    checks: str | None = None,
    lifespan: Any = None,
    websocket: Any = None,
) -> Stack:
    """Compose ``middleware`` (default ``settings.ASGI_MIDDLEWARE``) around ``app``.

    Raises :class:`StackConfigurationError` for the first bad entry and issues a
    :class:`StackWarning` for each non-fatal finding, all before the first request.
    """
    conf = read_settings()
    entries = conf.middleware if middleware is None else middleware
    mode = _checks_mode(conf.checks if checks is None else checks)
    findings = Findings(collect=False)
    wrap = None
    if mode != "off":
        from middleware_stack import guards

        wrap = guards.wrapper(mode, conf.blocking_ms)
    chain, boundary = _compose(
        cast(ASGIApp, app),
        entries,
        mode,
        conf.lifespan if lifespan is None else lifespan,
        conf.websocket if websocket is None else websocket,
        findings,
        wrap,
    )
    for w in findings.result.warnings:
        warnings.warn(w, stacklevel=2)
    layers = tuple(findings.result.layers)
    stack = Stack(
        chain, layers, cast(ASGIApp, app), mode, boundary, tuple(findings.result.instances), wrap
    )
    boundary.owner = stack
    stack._arguments = {
        "middleware": middleware,
        "lifespan": lifespan,
        "websocket": websocket,
    }
    boundary.note_not_django()
    return stack


def inspect_stack(middleware: Iterable[Any] | None = None) -> BuildResult:
    """Run every build-time check without raising: the errors and warnings, collected.

    Used by the system checks. Layers are constructed around a placeholder app.
    """
    conf = read_settings()
    findings = Findings(collect=True)

    async def placeholder(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("inspect_stack() builds a stack for checking only")

    try:
        _checks_mode(conf.checks)
        _blocking_ms(conf.blocking_ms)
    except StackConfigurationError as exc:
        findings.result.errors.append(exc)
    try:
        _compose(
            placeholder,
            conf.middleware if middleware is None else middleware,
            "off",
            conf.lifespan,
            conf.websocket,
            findings,
        )
    except StackConfigurationError as exc:
        findings.result.errors.append(exc)
    return findings.result
