"""What layers read from an ASGI scope the way Django reads it, and how they log it."""

from __future__ import annotations

from typing import Any

import django
from django.conf import settings
from django.core.handlers.asgi import get_script_prefix

from middleware_stack.types import Scope

__all__ = ["log_safe", "path_info", "script_name"]


def script_name(scope: Scope) -> str:
    """``request.META["SCRIPT_NAME"]``: ``FORCE_SCRIPT_NAME`` if set, else ``root_path``.

    Asked of Django itself (``django.core.handlers.asgi.get_script_prefix``) on every
    call, so the answer follows Django's rule in every supported version and follows
    ``override_settings``. Without configured settings (a non-Django app) it is
    ``root_path``.
    """
    if settings.configured:
        return str(get_script_prefix(scope))
    return scope.get("root_path", "") or ""


def path_info(scope: Scope) -> str:
    """The path Django's URLconf resolves (``request.path_info``), computed as Django does.

    Up to Django 6.0, ``ASGIRequest`` removes :func:`script_name` from ``scope["path"]``
    as a plain string prefix (``str.removeprefix``). Django 6.1 removes it only at a
    segment boundary: the prefix without its trailing ``/`` must be the whole path or be
    followed by ``/`` (``/ap`` is no prefix of ``/app``). Either way a path that does not
    start with it is taken as it is. A path-matching option (auth ``required_paths``,
    CORS ``paths``, timing ``exclude_paths``) is written against the URLconf: matching
    anything else would fail open under ``FORCE_SCRIPT_NAME`` or a mount prefix.
    """
    path: str = scope["path"]
    prefix = script_name(scope)
    if not prefix:
        return path
    if _SEGMENT_PREFIX:
        prefix = prefix.rstrip("/")
        if path == prefix or path.startswith(prefix + "/"):
            return path[len(prefix) :]
        return path
    return path.removeprefix(prefix)


#: Django 6.1 strips the script name only at a path-segment boundary.
_SEGMENT_PREFIX = django.VERSION >= (6, 1)


def log_safe(value: Any, limit: int = 1000) -> str:
    """A client-controlled value as one printable-ASCII line, for a log message.

    As Django escapes the request path in its own log lines (CVE-2025-48432):
    ``unicode_escape``, so CR/LF, ANSI escape sequences, other control characters,
    backslashes and non-ASCII text are written as ``\\r``, ``\\x1b``, ``\\u2028`` …,
    and a hostile value can neither forge a log line nor drive a terminal. Bytes are
    read as latin-1 (how servers hand header values over); anything else goes through
    ``str()``. Longer values are cut at ``limit`` characters and marked with ``...``.
    """
    if isinstance(value, bytes | bytearray):
        text = bytes(value).decode("latin-1")
    elif isinstance(value, str):
        text = value
    else:
        text = str(value)
    cut = len(text) > limit
    out = text[:limit].encode("unicode_escape").decode("ascii")
    return out + "..." if cut else out
