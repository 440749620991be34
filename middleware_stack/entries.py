"""Settings entries -> :class:`Layer` objects.

This module only parses and imports: it never builds an application. Everything it
refuses is refused with the entry's position (``ASGI_MIDDLEWARE[i]``), its dotted path,
what is wrong and how to fix it, because a bad entry must fail at start-up, not on the
first request.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from middleware_stack.exceptions import StackConfigurationError
from middleware_stack.layer import ALL_SCOPES, Layer, dotted_path, import_object
from middleware_stack.layer import listed as _listed
from middleware_stack.types import SCOPE_TYPES

__all__ = ["ALL_SCOPES", "Layer", "check_options", "dotted_path", "import_object", "parse_entry"]

#: Keys accepted in the dict entry form.
ENTRY_KEYS = ("middleware", "options", "enabled", "scopes", "name", "ignore_order")


def _bad(msg: str, index: int, hint: str, path: str | None = None) -> StackConfigurationError:
    return StackConfigurationError(
        msg, index=index, path=path, hint=hint, id="middleware_stack.E001"
    )


def _from_starlette(entry: Any, index: int) -> Layer:
    args = tuple(getattr(entry, "args", ()) or ())
    kwargs = getattr(entry, "kwargs", None)
    if kwargs is None:  # Starlette < 0.35 called them options
        kwargs = getattr(entry, "options", {})
    cls = entry.cls
    if args:
        raise _bad(
            f"Starlette Middleware({dotted_path(cls)}, ...) has positional arguments {args!r}.",
            index,
            "Pass options by keyword: Middleware(cls, option=value).",
            dotted_path(cls),
        )
    return Layer(cls, dict(kwargs))


def _is_starlette_middleware(entry: object) -> bool:
    t = type(entry)
    return (
        t.__name__ == "Middleware"
        and t.__module__.startswith("starlette.")
        and hasattr(entry, "cls")
    )


def _scopes(value: Any, index: int, path: str) -> frozenset[str]:
    if value is None:
        return ALL_SCOPES
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise StackConfigurationError(
            f"'scopes' must be a list of scope types, not {value!r}.",
            index=index,
            path=path,
            hint=f"Write e.g. 'scopes': ['http']; known types: {', '.join(sorted(SCOPE_TYPES))}.",
            id="middleware_stack.E007",
        )
    items = list(_listed(value))
    unknown = [s for s in items if not isinstance(s, str) or s not in SCOPE_TYPES]
    if unknown or not items:
        not_str = [s for s in unknown if not isinstance(s, str)]
        if not_str:
            what = f"scope type(s) {not_str!r} that are not strings"
        elif unknown:
            what = f"unknown scope type(s) {unknown!r}"
        else:
            what = "an empty 'scopes' list"
        close = difflib.get_close_matches(str(unknown[0]), SCOPE_TYPES, n=1) if unknown else []
        hint = f"Did you mean {close[0]!r}? " if close else ""
        raise StackConfigurationError(
            f"The entry has {what}.",
            index=index,
            path=path,
            hint=hint + f"Known scope types: {', '.join(sorted(SCOPE_TYPES))}.",
            id="middleware_stack.E007",
        )
    return frozenset(items)


def _normalise(entry: Any, index: int) -> Layer:
    """Any of the four entry forms -> an unresolved :class:`Layer`."""
    if isinstance(entry, Layer):
        return entry
    if isinstance(entry, str):
        return Layer(entry)
    if _is_starlette_middleware(entry):
        return _from_starlette(entry, index)
    if isinstance(entry, tuple | list):
        if len(entry) != 2:
            first = entry[0] if entry else None
            path = first if isinstance(first, str) else None
            raise _bad(
                f"A {type(entry).__name__} entry must be (factory, options); "
                f"got {len(entry)} item(s).",
                index,
                "Write ('pkg.module.Factory', {'option': value}), or just 'pkg.module.Factory' "
                "when there are no options.",
                path,
            )
        factory, options = entry
        path = factory if isinstance(factory, str) else None
        if not isinstance(options, Mapping):
            raise _bad(
                f"The options of a tuple entry must be a dict, not {type(options).__name__}.",
                index,
                "Write ('pkg.module.Factory', {'option': value}).",
                path,
            )
        if not (isinstance(factory, str) or callable(factory)):
            raise _bad(
                f"The factory must be a dotted path or a callable, not {factory!r}.",
                index,
                "Write ('pkg.module.Factory', {...}).",
            )
        return Layer(factory, options)
    if isinstance(entry, Mapping):
        return _from_dict(entry, index)
    if callable(entry):
        return Layer(entry)
    raise _bad(
        f"An entry must be a dotted path, a (path, options) tuple, a dict or a Layer; "
        f"got {type(entry).__name__} {entry!r}.",
        index,
        "See the entry forms in the middleware_stack docs ('Settings and entry forms').",
    )


def _from_dict(entry: Mapping[Any, Any], index: int) -> Layer:
    factory = entry.get("middleware")
    path = factory if isinstance(factory, str) else None
    unknown = [k for k in entry if k not in ENTRY_KEYS]
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), ENTRY_KEYS, n=1)
        hint = f"Did you mean {close[0]!r}? " if close else ""
        raise _bad(
            f"Unknown key(s) {unknown!r} in a dict entry.",
            index,
            hint + f"Accepted keys: {', '.join(ENTRY_KEYS)}.",
            path,
        )
    if factory is None:
        raise _bad(
            "A dict entry needs a 'middleware' key.",
            index,
            "Write {'middleware': 'pkg.module.Factory', 'options': {...}}.",
        )
    if not (isinstance(factory, str) or callable(factory)):
        raise _bad(
            f"'middleware' must be a dotted path or a callable, not {factory!r}.",
            index,
            "Write {'middleware': 'pkg.module.Factory'}.",
        )
    options = entry.get("options", None)
    if options is not None and not isinstance(options, Mapping):
        raise _bad(
            f"'options' must be a dict, not {type(options).__name__}.",
            index,
            "Write 'options': {'name': value}.",
            path,
        )
    for key in ("enabled", "ignore_order"):
        if key in entry and not isinstance(entry[key], bool):
            raise _bad(
                f"{key!r} must be True or False, not {entry[key]!r}.",
                index,
                f"Write '{key}': True or '{key}': False (a bool, not a string).",
                path,
            )
    name = entry.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        raise _bad(
            f"'name' must be a non-empty string, not {name!r}.",
            index,
            "Give the layer a short label, e.g. 'name': 'api-cors', or leave 'name' out.",
            path,
        )
    layer = Layer(
        factory,
        options,
        enabled=entry.get("enabled", True),
        name=name,
        ignore_order=entry.get("ignore_order", False),
    )
    layer.scopes = _scopes(entry.get("scopes"), index, layer.path)
    return layer


def parse_entry(entry: Any, index: int) -> Layer:
    """Normalise, validate and import one entry; returns a resolved copy."""
    raw = _normalise(entry, index)
    path = raw.path
    if not isinstance(raw.enabled, bool):
        raise _bad(
            f"'enabled' must be True or False, not {raw.enabled!r}.",
            index,
            "Pass enabled=True or enabled=False.",
            path,
        )
    if not isinstance(raw.ignore_order, bool):
        raise _bad(
            f"'ignore_order' must be True or False, not {raw.ignore_order!r}.",
            index,
            "Pass ignore_order=True or ignore_order=False.",
            path,
        )
    if not isinstance(raw.name, str) or not raw.name:
        raise _bad(
            f"'name' must be a non-empty string, not {raw.name!r}.",
            index,
            "Give the layer a short label, e.g. name='api-cors', or leave it out.",
            path,
        )
    scopes = raw.scopes
    if scopes is not ALL_SCOPES:
        scopes = _scopes(scopes, index, path)
    options = raw.options
    if any(not isinstance(k, str) for k in options):
        raise _bad(
            f"Option names must be strings; got {list(options)!r}.",
            index,
            "Options are keyword arguments: {'name': value}.",
            path,
        )
    factory = raw.factory
    if factory is None:
        factory = import_object(path, index=index)
    if not callable(factory):
        raise StackConfigurationError(
            f"{path!r} is a {type(factory).__name__}, not a middleware factory.",
            index=index,
            path=path,
            hint="Point at a class or function called as factory(app, **options).",
            id="middleware_stack.E005",
        )
    layer = Layer(
        raw.middleware,
        options,
        enabled=raw.enabled,
        scopes=scopes,
        name=raw.name,
        ignore_order=raw.ignore_order,
    )
    layer.factory = factory
    layer.index = index
    return layer


def check_options(layer: Layer) -> None:
    """Check ``layer.options`` against the factory's signature (first parameter = app)."""
    assert layer.factory is not None
    try:
        sig = inspect.signature(layer.factory)
    except (TypeError, ValueError):
        return  # builtins and C types: nothing to check against
    params = list(sig.parameters.values())
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if not params or (
        params[0].kind not in positional and params[0].kind is not inspect.Parameter.VAR_POSITIONAL
    ):
        raise StackConfigurationError(
            f"The factory's signature {sig} takes no positional 'app' argument.",
            index=layer.index,
            path=layer.path,
            hint="A factory is called as factory(app, **options); its first parameter is the "
            "wrapped ASGI app.",
            id="middleware_stack.E003",
        )
    rest = params[1:] if params[0].kind is not inspect.Parameter.VAR_POSITIONAL else params
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in rest)
    named = [
        p
        for p in rest
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    accepted = [p.name for p in named]
    if not accepts_any:
        unknown = [k for k in layer.options if k not in accepted]
        if unknown:
            close = difflib.get_close_matches(unknown[0], accepted, n=1)
            hint = f"Did you mean {close[0]!r}? " if close else ""
            raise StackConfigurationError(
                f"Unknown option(s) {', '.join(map(repr, unknown))}.",
                index=layer.index,
                path=layer.path,
                hint=hint + f"Accepted options: {', '.join(accepted) or '(none)'}.",
                id="middleware_stack.E003",
            )
    missing = [p.name for p in named if p.default is p.empty and p.name not in layer.options]
    if missing:
        raise StackConfigurationError(
            f"Missing required option(s) {', '.join(map(repr, missing))}.",
            index=layer.index,
            path=layer.path,
            hint=f"Add them to the entry's options; accepted options: {', '.join(accepted)}.",
            id="middleware_stack.E004",
        )
