"""Layer specs -> a composed :class:`Stack`, with every build-time check.

Everything that can be known before the first request is checked here: imports,
options against signatures, what each factory returns, order constraints and
duplicates. Findings are either raised (:class:`StackConfigurationError`) or warned
(:class:`StackWarning`); ``manage.py check`` runs the same code in collecting mode.

Order constraints are declared by a factory as a plain attribute, so a layer needs no
import from this package to take part::

    class CORSMiddleware:
        stack_constraints = {"outside": ["pkg.auth.AuthMiddleware"], "unique": True}

Keys: ``outside`` / ``inside`` (dotted paths this layer must wrap / sit within; an
error), ``outermost`` / ``innermost`` (a warning, silenced by the entry's
``ignore_order``), ``unique`` (a second copy is an error).
"""

from __future__ import annotations

import inspect
import sys
import warnings
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, cast

from asgiref.sync import iscoroutinefunction

from middleware_stack import boundary as _boundary
from middleware_stack.entries import ALL_SCOPES, Layer, check_options, dotted_path, parse_entry
from middleware_stack.exceptions import StackConfigurationError, StackWarning
from middleware_stack.settings import blocking_ms as _blocking_ms
from middleware_stack.settings import read_settings
from middleware_stack.types import ASGIApp, Receive, Scope, Send

__all__ = ["BuildResult", "Stack", "build_stack", "inspect_stack"]

ChecksMode = Literal["off", "warn", "strict"]
#: ``wrap(app, index, path)``: wraps each layer (and the app) in a runtime check.
Wrapper = Callable[[ASGIApp, "int | None", str], ASGIApp]
CONSTRAINT_KEYS = frozenset({"outside", "inside", "outermost", "innermost", "unique"})


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


class ASGI2Adapter:
    """Run an ASGI 2 double-callable (``app(scope)`` then ``instance(receive, send)``)."""

    __slots__ = ("app",)

    def __init__(self, app: Callable[[Scope], Any]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        instance = self.app(scope)
        await instance(receive, send)


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
                await _boundary.watch_lifespan(self._chain, self.boundary, scope, receive, send)
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


class BuildResult:
    """What :func:`inspect_stack` found: the layers that parsed, and every finding."""

    def __init__(self) -> None:
        self.layers: list[Layer] = []
        self.instances: list[Any] = []
        self.errors: list[StackConfigurationError] = []
        self.warnings: list[StackWarning] = []


class _Findings:
    def __init__(self, collect: bool) -> None:
        self.collect = collect
        self.result = BuildResult()

    def error(self, exc: StackConfigurationError) -> None:
        if not self.collect:
            raise exc
        self.result.errors.append(exc)

    def warn(self, w: StackWarning) -> None:
        self.result.warnings.append(w)


def _valid_constraints(raw: dict[str, Any]) -> bool:
    """``outside``/``inside`` are lists of dotted paths, every other key a bool."""
    for key, value in raw.items():
        if key in ("outside", "inside"):
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                return False
        elif not isinstance(value, bool):
            return False
    return True


def _constraints(layer: Layer) -> dict[str, Any]:
    raw = getattr(layer.factory, "stack_constraints", None)
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not set(raw) <= CONSTRAINT_KEYS or not _valid_constraints(raw):
        raise StackConfigurationError(
            f"The factory declares invalid stack_constraints {raw!r}.",
            index=layer.index,
            path=layer.path,
            hint=f"stack_constraints is a dict with keys among {sorted(CONSTRAINT_KEYS)}: "
            "'outside' and 'inside' lists of dotted paths, the others True or False; "
            "report this to the layer's authors.",
            id="middleware_stack.E008",
        )
    return raw


def _matches(layer: Layer, path: str) -> bool:
    return layer.path == path or dotted_path(layer.factory) == path


#: (key, must this layer come first?, relation, where to move it)
_RELATIONS = (("outside", True, "outside", "above"), ("inside", False, "inside", "below"))
_EDGES = (("outermost", "first", "top"), ("innermost", "last", "end"))


def _check_order(layers: Sequence[Layer], findings: _Findings) -> None:
    last = len(layers) - 1
    for pos, layer in enumerate(layers):
        try:
            rules = _constraints(layer)
        except StackConfigurationError as exc:
            findings.error(exc)
            continue
        for key, first, relation, move in _RELATIONS:
            for target in rules.get(key, ()):
                for other_pos, other in enumerate(layers):
                    if other is layer or not _matches(other, target) or (other_pos > pos) == first:
                        continue
                    findings.error(
                        StackConfigurationError(
                            f"{layer.name} must sit {relation} {other.name} "
                            f"(ASGI_MIDDLEWARE[{other.index}]), but it is listed "
                            f"{'after' if first else 'before'} it.",
                            index=layer.index,
                            path=layer.path,
                            hint=f"Move it {move} ASGI_MIDDLEWARE[{other.index}]: "
                            "the first entry is the outermost.",
                            id="middleware_stack.E008",
                        )
                    )
        if rules.get("unique"):
            for other in layers[pos + 1 :]:
                if other.factory is layer.factory:
                    findings.error(
                        StackConfigurationError(
                            f"{layer.name} may appear only once, but "
                            f"ASGI_MIDDLEWARE[{other.index}] lists it again.",
                            index=layer.index,
                            path=layer.path,
                            hint="Remove one of the two entries.",
                            id="middleware_stack.E011",
                        )
                    )
        if layer.ignore_order:
            continue
        for key, where, end in _EDGES:
            if rules.get(key) and pos != (0 if where == "first" else last):
                findings.warn(
                    StackWarning(
                        f"{layer.name} wants to be the {key} layer (listed {where}), but it is "
                        f"ASGI_MIDDLEWARE[{layer.index}] of {last + 1}, so "
                        f"{'the layers outside it are not seen' if where == 'first' else 'layers inside it run unseen'}.",
                        index=layer.index,
                        path=layer.path,
                        hint=f"Move it to the {end} of ASGI_MIDDLEWARE, or add 'ignore_order': "
                        "True to its entry if this position is intended.",
                        id="middleware_stack.W004",
                    )
                )


def _check_duplicates(layers: Sequence[Layer], findings: _Findings) -> None:
    seen: dict[tuple[str, str], Layer] = {}
    for layer in layers:
        key = (dotted_path(layer.factory), layer.name)
        first = seen.setdefault(key, layer)
        if first is not layer and not _constraints_quiet(layer).get("unique"):
            findings.warn(
                StackWarning(
                    f"{layer.name} is listed twice (also ASGI_MIDDLEWARE[{first.index}]); "
                    "every request passes through it twice.",
                    index=layer.index,
                    path=layer.path,
                    hint="Remove the duplicate, or give each entry a distinct 'name' if both "
                    "are intended.",
                    id="middleware_stack.W003",
                )
            )


def _constraints_quiet(layer: Layer) -> dict[str, Any]:
    try:
        return _constraints(layer)
    except StackConfigurationError:
        return {}


def _positional_arity(obj: Any) -> int | None:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in sig.parameters.values()):
        return None
    return sum(1 for p in sig.parameters.values() if p.kind in kinds)


def is_async_callable(obj: Any) -> bool:
    """True for ``async def`` functions and objects with an ``async def __call__``.

    Decided from the object itself, not with asgiref's ``is_double_callable``, which
    calls every class ASGI 2 and cannot see through a sync ``__call__``.
    """
    if iscoroutinefunction(obj):
        return True
    call = getattr(obj, "__call__", None)  # noqa: B004 - want the bound method itself
    return call is not None and not inspect.isfunction(obj) and iscoroutinefunction(call)


def as_asgi3(
    instance: Any, where: dict[str, Any], what: str
) -> tuple[ASGIApp, StackWarning | None]:
    """Check that ``instance`` is an async ASGI 3 app; adapt ASGI 2 with a warning."""
    if instance is None:
        raise StackConfigurationError(
            f"{what} returned None instead of an ASGI application.",
            hint="A factory must return the wrapped app; did a function forget 'return'?",
            id="middleware_stack.E005",
            **where,
        )
    asgi2_hint = (
        "Port it to ASGI 3 (async def __call__(self, scope, receive, send)); until then it "
        "runs through an adapter."
    )
    if inspect.isclass(instance):
        warning = StackWarning(
            f"{what} is an ASGI 2 class ({dotted_path(instance)}); adapted to ASGI 3.",
            hint=asgi2_hint,
            id="middleware_stack.W001",
            **where,
        )
        return ASGI2Adapter(instance), warning
    if not callable(instance):
        raise StackConfigurationError(
            f"{what} returned {type(instance).__name__} {instance!r}, which is not callable.",
            hint="Return an ASGI 3 application: async def app(scope, receive, send).",
            id="middleware_stack.E005",
            **where,
        )
    if is_async_callable(instance):
        return cast(ASGIApp, instance), None
    call = instance if inspect.isroutine(instance) else type(instance).__call__
    arity = _positional_arity(instance)
    if arity == 1:
        warning = StackWarning(
            f"{what} is an ASGI 2 double-callable ({dotted_path(instance)}); adapted to ASGI 3.",
            hint=asgi2_hint,
            id="middleware_stack.W001",
            **where,
        )
        return ASGI2Adapter(instance), warning
    raise StackConfigurationError(
        f"{what} returned {dotted_path(instance)}, whose {getattr(call, '__name__', 'call')}() "
        "is a plain 'def', not 'async def'. ASGI 3 servers await the app; a sync call would "
        "block the event loop or return an un-awaited value.",
        hint="Declare 'async def __call__(self, scope, receive, send)'. If it really returns an "
        "awaitable, mark it with asgiref.sync.markcoroutinefunction.",
        id="middleware_stack.E006",
        **where,
    )


def _basehttp_warning(instance: Any, layer: Layer) -> StackWarning | None:
    base = sys.modules.get("starlette.middleware.base")
    cls = getattr(base, "BaseHTTPMiddleware", None)
    if cls is None or not isinstance(instance, cls):
        return None
    return StackWarning(
        f"{layer.name} is a Starlette BaseHTTPMiddleware. It runs the rest of the stack in a "
        "separate task with memory streams: it costs tens of microseconds per request (about "
        "40x a pure ASGI layer), contextvars set inside the view do not reach it, and it "
        "interferes with streaming and client-disconnect handling.",
        index=layer.index,
        path=layer.path,
        hint="Rewrite it as a pure ASGI middleware (async def __call__(scope, receive, send)).",
        id="middleware_stack.W002",
    )


def _construct(layer: Layer, inner: ASGIApp, findings: _Findings) -> Any:
    where: dict[str, Any] = {"index": layer.index, "path": layer.path}
    assert layer.factory is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            instance = layer.factory(inner, **layer.options)
        except StackConfigurationError as exc:
            if exc.index is None:
                exc = _located(exc, layer)
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
            findings.warn(_located(message, layer) if message.index is None else message)
        else:
            warnings.warn_explicit(message, w.category, w.filename, w.lineno)
    return instance


def _located(finding: Any, layer: Layer) -> Any:
    """A copy of a layer's own finding, with the entry's position and path filled in."""
    return type(finding)(
        finding.msg, index=layer.index, path=layer.path, hint=finding.hint, id=finding.id
    )


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
    findings: _Findings,
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
            check_options(layer)
        except StackConfigurationError as exc:
            findings.error(exc)
            continue
        if layer.enabled:
            layers.append(layer)
    _check_order(layers, findings)
    _check_duplicates(layers, findings)

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
        for warning in (w, _basehttp_warning(instance, layer)):
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
    findings = _Findings(collect=False)
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
    return stack


def inspect_stack(middleware: Iterable[Any] | None = None) -> BuildResult:
    """Run every build-time check without raising: the errors and warnings, collected.

    Used by the system checks. Layers are constructed around a placeholder app.
    """
    conf = read_settings()
    findings = _Findings(collect=True)

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
