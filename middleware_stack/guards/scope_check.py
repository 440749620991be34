"""The connection scope check and the header-list helpers.

:func:`check_scope` runs at the outermost boundary and wherever a layer passes on a
scope of its own; its fast path takes a well-formed http scope without walking headers
already found valid. The header helpers (:func:`_headers_problem`, :func:`_scan`,
:func:`_content_length`, :func:`_pairs_ok`) are shared with the response checkers in
:mod:`.protocol`. Apart from the message state machines: nothing here keeps state.
"""

from __future__ import annotations

from operator import is_
from typing import Any

from middleware_stack.guards.rules import EXPECT, R_SCOPE, R_SCOPE_HEADERS, REQUIRED, Problem

__all__ = ["check_scope"]

_STR_KEYS = ("http_version", "method", "scheme", "path", "root_path")


def _headers_problem(headers: object, rule: str, where: str) -> Problem | None:
    if type(headers) is not list and type(headers) is not tuple:
        return (
            rule,
            f"sent {where} headers as a {type(headers).__name__}, not a list",
            EXPECT["headers"],
        )
    for pair in headers:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            return (
                rule,
                f"sent a {where} header {pair!r} that is not a (name, value) pair",
                EXPECT["headers"],
            )
        name, value = pair
        if type(name) is not bytes or type(value) is not bytes:
            return (
                rule,
                f"sent a {where} header {pair!r} that is not a pair of bytes",
                EXPECT["headers"],
            )
        if name != name.lower():
            return (
                rule,
                f"sent a {where} header name {name!r} that is not lowercase",
                EXPECT["headers"],
            )
    return None


def _scan(headers: Any) -> int:
    """Fast path over valid response headers: the declared content-length (-1 if none).

    Returns -2 when anything looks wrong; :func:`_headers_problem` and
    :func:`_content_length` then say what.
    """
    if type(headers) is not list and type(headers) is not tuple:
        return -2
    found = -1
    try:
        for pair in headers:
            if type(pair) is not tuple and type(pair) is not list:
                return -2  # a set or a dict of two would unpack too, in no set order
            name, value = pair
            if type(name) is not bytes or type(value) is not bytes:
                return -2
            if not name.islower() and name.lower() != name:
                return -2
            if name == b"content-length":
                if found != -1 or not value.isdigit():
                    return -2
                found = int(value)
    except (TypeError, ValueError):
        return -2
    return found


def _content_length(headers: Any) -> int | str:
    """The declared content-length (-1 if none), or a description of a bad one."""
    found = -1
    for name, value in headers:
        if name == b"content-length":
            if not value.isdigit():
                return f"a content-length {value!r} that is not a number"
            try:
                n = int(value)
            except ValueError:  # more digits than int() converts (4300 by default)
                return f"a content-length of {len(value)} digits"
            if found >= 0 and n != found:
                return f"two content-length headers that disagree ({found} and {n})"
            found = n
    return found


_KEYSETS = {kind: frozenset(keys) for kind, keys in REQUIRED.items()}


def _pairs_ok(headers: Any) -> bool:
    """Every item a pair of bytes with a lowercase name (the quick yes; no reason why)."""
    try:
        for name, value in headers:
            if type(name) is not bytes or type(value) is not bytes:
                return False
            if not name.islower() and name.lower() != name:
                return False
    except (TypeError, ValueError):
        return False
    return True


def check_scope(scope: object, known: Any = None) -> Problem | None:
    """Shape, required keys and header types of a connection scope.

    ``known`` is a copy of a headers list found valid (in the scope this one was copied
    from): when the scope's headers are the very same pair objects, they are not walked
    again (identity, not equality: an equal bytearray value is not bytes).
    """
    if type(scope) is dict:
        # The fast path: a well-formed http scope, looked up without defaults.
        try:
            if (
                scope["type"] == "http"
                and type(scope["asgi"]) is dict
                and type(scope["path"]) is str
                and type(scope["method"]) is str
                and type(scope["http_version"]) is str
                and type(scope["query_string"]) is bytes
                and type(scope.get("scheme", "")) is str
                and type(scope.get("root_path", "")) is str
            ):
                headers: Any = scope["headers"]
                if (
                    known is not None
                    and len(headers) == len(known)
                    and all(map(is_, headers, known))
                ):
                    return None
                if type(headers) is list and _pairs_ok(headers):
                    return None
        except (KeyError, TypeError, ValueError):
            pass
    return _check_scope(scope)


def _check_scope(scope: object) -> Problem | None:
    """:func:`check_scope` in full, saying what is wrong."""
    if type(scope) is not dict and not isinstance(scope, dict):
        return (R_SCOPE, f"passed a scope that is a {type(scope).__name__}", EXPECT["scope"])
    kind = scope.get("type")
    keys = _KEYSETS.get(kind) if type(kind) is str else None
    if keys is None:
        return (R_SCOPE, f"passed a scope of unknown type {kind!r}", EXPECT["scope"])
    if not keys <= scope.keys():
        missing = [key for key in REQUIRED[str(kind)] if key not in scope]
        return (
            R_SCOPE,
            f"passed {'an' if kind == 'http' else 'a'} {kind} scope without the required "
            f"key(s) {', '.join(missing)}",
            EXPECT["scope"],
        )
    if type(scope["asgi"]) is not dict:
        return (R_SCOPE, f"passed a scope whose 'asgi' is {scope['asgi']!r}", EXPECT["scope"])
    if kind == "lifespan":
        return None
    get = scope.get
    if (
        type(get("path")) is not str
        or type(get("method", "")) is not str
        or type(get("http_version", "")) is not str
        or type(get("scheme", "")) is not str
        or type(get("root_path", "")) is not str
    ):
        for key in _STR_KEYS:
            value = get(key, "")
            if type(value) is not str:
                return (
                    R_SCOPE,
                    f"passed a scope whose {key!r} is {type(value).__name__} {value!r}, not str",
                    EXPECT["scope"],
                )
    if type(scope["query_string"]) is not bytes:
        return (
            R_SCOPE,
            f"passed a scope whose 'query_string' is {scope['query_string']!r}, not bytes",
            EXPECT["scope"],
        )
    headers = scope["headers"]
    if (type(headers) is list or type(headers) is tuple) and _pairs_ok(headers):
        return None
    problem = _headers_problem(headers, R_SCOPE_HEADERS, "scope")
    if problem is None:
        return None
    what = problem[1].replace("sent a scope header", "passed a scope with a header", 1)
    what = what.replace("sent scope headers as", "passed a scope with headers as", 1)
    return (problem[0], what, EXPECT["scope_headers"])
