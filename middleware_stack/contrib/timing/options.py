"""``TimingMiddleware``'s options, parsed and checked before the first request."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any, cast

from asgiref.sync import iscoroutinefunction

from middleware_stack import StackConfigurationError
from middleware_stack.contrib.timing.record import TimingRecord

OnRecord = Callable[[TimingRecord], Any]

#: scheme://host[:port] in ASCII, as the Origin header serializes it (IDNA hosts in
#: their xn-- form), or "null".
_ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s/,;\"\\]+|null")


def _callbacks(value: Any) -> list[OnRecord]:
    from django.utils.module_loading import import_string

    items = [value] if isinstance(value, str) or callable(value) else value
    if not isinstance(items, list | tuple):
        raise StackConfigurationError(
            f"on_record={value!r} must be a list of callables or dotted paths.",
            hint='Write "on_record": ["middleware_stack.contrib.timing.exporters.LoggingExporter"].',
            id="middleware_stack.E201",
        )
    result: list[OnRecord] = []
    for item in items:
        obj = item
        if isinstance(item, str):
            try:
                obj = import_string(item)
            except ImportError as exc:
                raise StackConfigurationError(
                    f"on_record entry {item!r} cannot be imported: {exc}",
                    hint="Check the dotted path; it names a callable taking the record, or a "
                    "class constructed with no arguments (an exporter).",
                    id="middleware_stack.E201",
                ) from exc
            if inspect.isclass(obj):
                try:
                    obj = obj()
                except Exception as exc:
                    raise StackConfigurationError(
                        f"on_record entry {item!r} is a class, and constructing it with no "
                        f"arguments raised {type(exc).__name__}: {exc}",
                        hint="Pass a configured instance instead of the dotted path.",
                        id="middleware_stack.E201",
                    ) from exc
        if not callable(obj):
            raise StackConfigurationError(
                f"on_record entry {item!r} is not callable.",
                hint="Each entry is a callable taking one TimingRecord (sync or async).",
                id="middleware_stack.E201",
            )
        result.append(cast(OnRecord, obj))
    return result


def _is_async(fn: Any) -> bool:
    if iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004
    return not inspect.isroutine(fn) and call is not None and iscoroutinefunction(call)


def _exclusion(paths: Any) -> Callable[[str], Any] | None:
    items = [paths] if isinstance(paths, str) else paths
    if not isinstance(items, list | tuple) or not all(isinstance(p, str) for p in items):
        raise StackConfigurationError(
            f"exclude_paths={paths!r} must be a list of regular expressions (strings).",
            hint='Write "exclude_paths": [r"^/healthz$", r"^/static/"].',
            id="middleware_stack.E202",
        )
    if not items:
        return None
    compiled = []
    for p in items:
        try:
            compiled.append(re.compile(p))
        except re.error as exc:
            raise StackConfigurationError(
                f"exclude_paths entry {p!r} is not a valid regular expression: {exc}.",
                hint="Paths are matched with re.match (anchored at the start of the path).",
                id="middleware_stack.E202",
            ) from exc
    if len(compiled) == 1:
        return compiled[0].match
    # Each on its own, not joined into one: inline flags, group names and
    # backreferences keep the meaning they have alone (answers are cached per path).
    matchers = tuple(c.match for c in compiled)
    return lambda path: any(m(path) for m in matchers) or None


def _allow_origin(value: Any) -> bytes | None:
    if value is None or value is False:
        return None
    items = [value] if isinstance(value, str) else value
    ok = isinstance(items, list | tuple) and bool(items)
    ok = ok and all(
        isinstance(o, str) and o.isascii() and (o == "*" or _ORIGIN.fullmatch(o)) for o in items
    )
    if not ok or ("*" in items and len(items) > 1):
        raise StackConfigurationError(
            f"timing_allow_origin={value!r} is not '*' or a list of origins.",
            hint='Write "timing_allow_origin": "*" or ["https://app.example.com"] '
            "(scheme://host[:port], no path; an international host in its xn-- form).",
            id="middleware_stack.E203",
        )
    return ", ".join(items).encode("ascii")
