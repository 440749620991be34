"""The error and warning types of middleware_stack.

Every finding carries the entry it is about (``ASGI_MIDDLEWARE[i]`` and the dotted path)
and a hint, so that the same object can be raised by ``build_stack``, issued as a
warning, or turned into a Django system check message without reformatting.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

__all__ = ["ASGIProtocolError", "StackConfigurationError", "StackWarning"]


def _where(index: int | None, path: str | None) -> str:
    if index is None:
        return f"{path}: " if path else ""
    return f"ASGI_MIDDLEWARE[{index}] ({path!r}): " if path else f"ASGI_MIDDLEWARE[{index}]: "


class _Finding:
    """Shared by errors and warnings: where (entry, path), what, and how to fix it."""

    default_id = ""

    def __init__(
        self,
        msg: str,
        *,
        index: int | None = None,
        path: str | None = None,
        hint: str | None = None,
        id: str | None = None,
    ) -> None:
        self.msg = msg
        self.index = index
        self.path = path
        self.hint = hint
        self.id = id or self.default_id
        text = _where(index, path) + msg
        if hint:
            text += f" HINT: {hint}"
        super().__init__(text)  # type: ignore[call-arg]  # Exception or Warning, via the MRO


class StackConfigurationError(_Finding, ImproperlyConfigured):
    """A setting or entry that can never work; raised before the first request.

    ``id`` is the stable system-check id (``middleware_stack.E0xx``) under which
    ``manage.py check`` reports the same finding.
    """

    default_id = "middleware_stack.E001"


class StackWarning(_Finding, UserWarning):
    """A finding that works but is probably not what you want (cost, order, duplicates)."""

    default_id = "middleware_stack.W001"


class ASGIProtocolError(RuntimeError):
    """A layer broke the ASGI protocol (raised in ``"strict"`` checks mode)."""

    def __init__(self, msg: str, *, layer: str | None = None, message: object = None) -> None:
        self.layer = layer
        self.message = message
        super().__init__(msg)
