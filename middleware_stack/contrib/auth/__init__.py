"""Auth passthrough: an identity from a trusted proxy or a bearer token, into Django.

``AuthPassthroughMiddleware`` (an ASGI layer) decides who the client is with its
backends (``TrustedHeaderBackend``, ``BearerTokenBackend``) and sets ``scope["auth"]``
and a lazy ``scope["user"]``; ``ScopeUserMiddleware`` (a Django middleware) makes that
user ``request.user``. See ``docs/auth.rst``.

Add ``"middleware_stack.contrib.auth"`` to ``INSTALLED_APPS`` to get its system checks.
"""

from middleware_stack.contrib.auth import checks as _checks  # noqa: F401  (registers them)
from middleware_stack.contrib.auth.backends import (
    AuthInfo,
    BearerTokenBackend,
    InvalidCredentials,
    TrustedHeaderBackend,
)
from middleware_stack.contrib.auth.middleware import AuthPassthroughMiddleware, ScopeUser
from middleware_stack.contrib.auth.scope_user import ScopeUserMiddleware

__all__ = [
    "AuthInfo",
    "AuthPassthroughMiddleware",
    "BearerTokenBackend",
    "InvalidCredentials",
    "ScopeUser",
    "ScopeUserMiddleware",
    "TrustedHeaderBackend",
]

# One public home: error messages, order constraints and docs name these paths.
for _cls in (
    AuthInfo,
    AuthPassthroughMiddleware,
    BearerTokenBackend,
    InvalidCredentials,
    ScopeUser,
    ScopeUserMiddleware,
    TrustedHeaderBackend,
):
    _cls.__module__ = __name__
del _cls
