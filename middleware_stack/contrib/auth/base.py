"""What every auth backend shares: :class:`AuthInfo`, :class:`InvalidCredentials`, and
the rules for an acceptable identity."""

from __future__ import annotations

import logging
from operator import itemgetter
from typing import Any

from middleware_stack import StackConfigurationError

__all__ = ["AuthInfo", "InvalidCredentials", "valid_identity"]

logger = logging.getLogger("middleware_stack.contrib.auth")

Headers = list[tuple[bytes, bytes]]

_MAX_IDENTITY = 1024
_MAX_TOKEN = 16384
_NOTHING: tuple[None, None] = (None, None)


class AuthInfo(tuple[str, str, dict[str, Any]]):
    """What a backend established: ``scope["auth"]``.

    ``identity`` is the user name handed to Django's auth backend, ``backend`` the name
    of the backend that found it, ``claims`` anything else it learnt (token claims).
    Read-only, so that nothing downstream can rewrite who the request is; a tuple
    underneath because it is built on every identified request.
    """

    __slots__ = ()

    def __new__(cls, identity: str, backend: str, claims: dict[str, Any] | None = None) -> AuthInfo:
        return _tuple_new(cls, (identity, backend, {} if claims is None else claims))

    identity: str = property(itemgetter(0))  # type: ignore[assignment]
    backend: str = property(itemgetter(1))  # type: ignore[assignment]
    claims: dict[str, Any] = property(itemgetter(2))  # type: ignore[assignment]

    def __getnewargs__(self) -> tuple[str, str, dict[str, Any]]:
        return (self[0], self[1], self[2])

    def __repr__(self) -> str:
        return f"AuthInfo(identity={self.identity!r}, backend={self.backend!r})"


_tuple_new = tuple.__new__


class InvalidCredentials(Exception):
    """Credentials were presented and are wrong: refuse, never fall back to anonymous.

    Over HTTP the middleware answers ``status`` with ``www_authenticate``; a websocket
    is closed with code 4401.
    """

    def __init__(self, www_authenticate: str, status: int = 401, reason: str = "") -> None:
        super().__init__(reason or www_authenticate)
        self.www_authenticate = www_authenticate
        self.status = status
        self.reason = reason


def _error(msg: str, hint: str, id: str) -> StackConfigurationError:
    return StackConfigurationError(msg, hint=hint, id=f"middleware_stack.{id}")


def _encodable(text: str, charset: str) -> bool:
    try:
        text.encode(charset)
    except UnicodeEncodeError:
        return False
    return True


def valid_identity(value: str) -> bool:
    """Non-empty, printable, no surrounding whitespace, bounded: else refused."""
    return 0 < len(value) <= _MAX_IDENTITY and value.isprintable() and value.strip() == value
