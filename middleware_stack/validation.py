"""Build-time validation of layers: order constraints, duplicates, and what a factory returns.

Everything that can be known before the first request about a layer *as configured* is
decided here; :mod:`middleware_stack.builder` only composes. Findings are either raised
(:class:`StackConfigurationError`) or collected as warnings (:class:`StackWarning`);
``manage.py check`` runs the same code in collecting mode (:class:`Findings`).

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
from collections.abc import Callable, Sequence
from typing import Any, cast

from asgiref.sync import iscoroutinefunction

from middleware_stack.exceptions import StackConfigurationError, StackWarning
from middleware_stack.layer import Layer, dotted_path
from middleware_stack.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "ASGI2Adapter",
    "BuildResult",
    "Findings",
    "as_asgi3",
    "basehttp_warning",
    "check_duplicates",
    "check_not_django_middleware",
    "check_order",
    "is_async_callable",
    "located",
]

CONSTRAINT_KEYS = frozenset({"outside", "inside", "outermost", "innermost", "unique"})


class ASGI2Adapter:
    """Run an ASGI 2 double-callable (``app(scope)`` then ``instance(receive, send)``)."""

    __slots__ = ("app",)

    def __init__(self, app: Callable[[Scope], Any]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        instance = self.app(scope)
        await instance(receive, send)


class BuildResult:
    """What :func:`inspect_stack` found: the layers that parsed, and every finding."""

    def __init__(self) -> None:
        self.layers: list[Layer] = []
        self.instances: list[Any] = []
        self.errors: list[StackConfigurationError] = []
        self.warnings: list[StackWarning] = []


class Findings:
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


def check_order(layers: Sequence[Layer], findings: Findings) -> None:
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


def check_duplicates(layers: Sequence[Layer], findings: Findings) -> None:
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


def basehttp_warning(instance: Any, layer: Layer) -> StackWarning | None:
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


def located(finding: Any, layer: Layer) -> Any:
    """A copy of a layer's own finding, with the entry's position and path filled in."""
    return type(finding)(
        finding.msg, index=layer.index, path=layer.path, hint=finding.hint, id=finding.id
    )


def _django_middleware_reason(factory: Any) -> str | None:
    """Why ``factory`` is Django ``MIDDLEWARE`` (called with ``get_response``), or None.

    Taken for ASGI 2 (a class, called with one argument) it would be adapted, pass
    ``manage.py check`` and fail every request: ``'dict' object has no attribute 'path'``.
    """
    from django.utils.deprecation import MiddlewareMixin

    if inspect.isclass(factory) and issubclass(factory, MiddlewareMixin):
        return "a MiddlewareMixin subclass"
    markers = [m for m in ("sync_capable", "async_capable") if hasattr(factory, m)]
    if markers:
        return f"it carries Django's {' and '.join(markers)} marker"
    try:
        params = list(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        return None
    if params and params[0] == "get_response":
        return "its first parameter is named 'get_response'"
    return None


def check_not_django_middleware(layer: Layer) -> None:
    """Refuse a Django ``MIDDLEWARE`` class or function listed in ``ASGI_MIDDLEWARE``."""
    reason = _django_middleware_reason(layer.factory)
    if reason is None:
        return
    raise StackConfigurationError(
        f"This is Django middleware ({reason}): put it in MIDDLEWARE. It is called as "
        "middleware(get_response) for each Django request, not as an ASGI layer "
        "factory(app), so in ASGI_MIDDLEWARE every request would fail.",
        index=layer.index,
        path=layer.path,
        hint=f"Move {layer.path!r} from ASGI_MIDDLEWARE to MIDDLEWARE in settings.py.",
        id="middleware_stack.E012",
    )
