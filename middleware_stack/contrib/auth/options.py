"""``AuthPassthroughMiddleware``'s options: backends built and response headers checked
before the first request."""

from __future__ import annotations

from typing import Any

from django.utils.module_loading import import_string

from middleware_stack import StackConfigurationError
from middleware_stack.contrib.auth.base import _error


def _build_backend(entry: Any, index: int) -> Any:
    where = f"backends[{index}]"
    options: dict[str, Any] = {}
    target = entry
    if isinstance(entry, tuple | list):
        if len(entry) != 2 or not isinstance(entry[1], dict):
            raise _error(
                f"{where} = {entry!r} is not a (path, options) pair.",
                "Write ('middleware_stack.contrib.auth.BearerTokenBackend', "
                "{'verify': 'myproject.auth.verify'}).",
                "E301",
            )
        target, options = entry
    if isinstance(target, str):
        try:
            target = import_string(target)
        except ImportError as exc:
            raise _error(
                f"{where} = {entry!r} cannot be imported: {exc}",
                "Check the dotted path, e.g. 'middleware_stack.contrib.auth.TrustedHeaderBackend'.",
                "E301",
            ) from exc
    if isinstance(target, type):
        try:
            backend = target(**options)
        except StackConfigurationError:
            raise
        except TypeError as exc:
            raise _error(
                f"{where}: {target.__name__}(**{options!r}) failed: {exc}",
                "Check the backend's options against its documentation.",
                "E301",
            ) from exc
    elif options:
        raise _error(
            f"{where} gives options for {target!r}, which is already an instance.",
            "Give options only with a class or its dotted path.",
            "E301",
        )
    else:
        backend = target
    if not (hasattr(backend, "inspect_headers") or hasattr(backend, "authenticate")):
        raise _error(
            f"{where} = {backend!r} is not an auth backend: it has neither "
            "inspect_headers(scope, headers) nor authenticate(scope).",
            "Use TrustedHeaderBackend, BearerTokenBackend, or see the auth docs for the "
            "backend protocol.",
            "E301",
        )
    return backend


def _valid_header_value(value: Any) -> bool:
    """A str that encodes to latin-1 without control characters (no CR/LF injection)."""
    if not isinstance(value, str):
        return False
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return not any((b < 0x20 and b != 0x09) or b == 0x7F for b in raw)


def _response_headers(challenge: str) -> tuple[tuple[bytes, bytes], ...]:
    return (
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"www-authenticate", challenge.encode("latin-1")),
        (b"cache-control", b"no-store"),
    )
