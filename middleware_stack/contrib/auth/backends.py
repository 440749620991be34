"""Identity backends: where an identity comes from, and when it is believed.

A backend is a plain object with a ``name`` and one of two methods:

``inspect_headers(scope, headers) -> (AuthInfo | None, cleaned_headers | None)``
    Synchronous, for credentials carried in headers that must be *removed* when they
    are not believed. The middleware calls it on every request, before any other
    backend and whatever their order, so a spoofed header is stripped even when an
    earlier backend has already identified the client. ``cleaned_headers`` is a new
    list when something was removed.

``async authenticate(scope) -> AuthInfo | None``
    For everything else. ``scope`` is the middleware's private copy: a backend may
    replace keys in it (never mutate their values in place) to remove what it consumed.
    Raise :class:`InvalidCredentials` to refuse the request outright.
"""

from middleware_stack.contrib.auth.base import AuthInfo, InvalidCredentials, valid_identity
from middleware_stack.contrib.auth.bearer import BearerTokenBackend
from middleware_stack.contrib.auth.trusted import TrustedHeaderBackend

__all__ = [
    "AuthInfo",
    "BearerTokenBackend",
    "InvalidCredentials",
    "TrustedHeaderBackend",
    "valid_identity",
]
