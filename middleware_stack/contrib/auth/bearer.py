"""``BearerTokenBackend``: ``Authorization: Bearer`` (and websocket tokens), checked by
the project's ``verify``."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import unquote_to_bytes

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.utils.module_loading import import_string

from middleware_stack.contrib.auth.base import (
    AuthInfo,
    InvalidCredentials,
    _encodable,
    _error,
    logger,
    valid_identity,
)
from middleware_stack.offload import run_sync_outside_request
from middleware_stack.scope import log_safe
from middleware_stack.types import Scope

__all__ = ["BearerTokenBackend"]

#: RFC 6750 b64token.
_B64TOKEN = re.compile(rb"[A-Za-z0-9\-._~+/]+=*")
_MAX_TOKEN = 16384
#: An Authorization value: the auth-scheme token, then the rest (linear: no lazy group;
#: trailing OWS is stripped after). For "Bearer" the rest must start with a space
#: (RFC 6750: "Bearer" 1*SP b64token).
_CREDENTIALS = re.compile(rb"[ \t]*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)(.*)", re.DOTALL)

Verify = Callable[[str], Any]


def _load_verify(verify: Any) -> Verify:
    if isinstance(verify, str):
        try:
            verify = import_string(verify)
        except ImportError as exc:
            raise _error(
                f"BearerTokenBackend verify={verify!r} cannot be imported: {exc}",
                "Give a callable or the dotted path of one, e.g. 'myproject.auth.verify_token'.",
                "E304",
            ) from exc
    if not callable(verify):
        raise _error(
            f"BearerTokenBackend verify={verify!r} is not callable.",
            "verify(token) must return the identity (a str, or an object with 'identity' and "
            "'claims'), or None to refuse; it may be 'async def'.",
            "E304",
        )
    return verify  # type: ignore[no-any-return]


def _is_async(func: Any) -> bool:
    if iscoroutinefunction(func):
        return True
    call = getattr(func, "__call__", None)  # noqa: B004 - want the bound method itself
    return call is not None and iscoroutinefunction(call)


def _to_info(result: Any, backend: str) -> AuthInfo | None:
    if result is None:
        return None
    if isinstance(result, AuthInfo):
        identity: Any = result.identity
        claims: Any = result.claims
    elif isinstance(result, str):
        identity, claims = result, None
    elif isinstance(result, Mapping):
        identity, claims = result.get("identity"), result.get("claims")
    else:
        identity, claims = getattr(result, "identity", None), getattr(result, "claims", None)
    if not isinstance(identity, str) or not valid_identity(identity):
        return None
    if claims is None:
        return AuthInfo(identity, backend, {})
    if not isinstance(claims, Mapping):
        # A verify bug, not a client's fault: fail closed (401), and say so loudly.
        logger.error(
            "BearerTokenBackend verify returned claims of type %s for %s; claims must be "
            "a mapping (or None). The token is refused.",
            type(claims).__name__,
            log_safe(identity, 100),
        )
        return None
    return AuthInfo(identity, backend, dict(claims))


def _close_stale_connections() -> None:
    """What Django's request signals do for a view (``close_old_connections``), for
    code that runs outside any request: drop this thread's database connections that
    are broken or past ``CONN_MAX_AGE``. Connections inside an atomic block are left
    alone (a caller's transaction, or a test's, as Django's test client does)."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and not conn.in_atomic_block:
            try:
                conn.close_if_unusable_or_obsolete()
            except Exception:  # housekeeping must never turn a good token into a 401
                logger.debug("closing a stale %r connection failed", conn.alias, exc_info=True)


def _with_fresh_connections(func: Callable[[str], Any]) -> Callable[[str], Any]:
    @functools.wraps(func)
    def call(token: str) -> Any:
        _close_stale_connections()
        try:
            return func(token)
        finally:
            _close_stale_connections()

    return call


def _without_protocols(headers: Any, prefix: str) -> list[tuple[bytes, bytes]]:
    """``headers`` with every ``prefix``-ed entry taken out of Sec-WebSocket-Protocol
    (the whole line if nothing else is left in it)."""
    start = prefix.encode("latin-1", "replace")
    out: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        if name.lower() == b"sec-websocket-protocol":
            kept = [p for p in (x.strip(b" \t") for x in value.split(b",")) if p]
            rest = [p for p in kept if not p.startswith(start)]
            if len(rest) != len(kept):
                if rest:
                    out.append((name, b", ".join(rest)))
                continue
        out.append((name, value))
    return out


class BearerTokenBackend:
    """``Authorization: Bearer <token>`` (RFC 6750), checked by your ``verify``.

    ``verify(token)`` is a callable or its dotted path, sync or async; it returns the
    identity (a ``str``, or an object or mapping with ``identity`` and ``claims``) or
    ``None`` for a token it rejects; claims that are not a mapping are a ``verify`` bug,
    refused with 401 and logged. A sync ``verify`` never runs on the event loop: with
    ``thread_sensitive=True`` (the default; keep it if it touches the ORM) each call runs
    wholly on a pooled worker thread, so checks run side by side rather than queueing on
    asgiref's one global thread; with ``False`` on the loop's default executor. It runs
    before Django's request, whose signals close
    stale database connections, so it runs between two such closings of its own
    (connections in an atomic block excepted): ``CONN_MAX_AGE`` holds, and a
    connection the database dropped is replaced. A rejected token is refused with 401 and
    ``WWW-Authenticate: Bearer error="invalid_token"``, never treated as anonymous; a
    malformed or repeated header (``Bearer<TAB>token`` included: RFC 6750 wants
    ``Bearer`` 1*SP token) gets 400 ``invalid_request``.

    Browsers cannot set headers on a WebSocket, so for ``websocket`` scopes the token is
    read from the query parameter ``query_param`` (default ``access_token``) or from a
    subprotocol ``subprotocol_prefix + token`` (e.g. ``"bearer."``); either is removed
    from the scope before the application sees it (a subprotocol token from
    ``subprotocols`` and from the ``Sec-WebSocket-Protocol`` header alike).
    """

    name = "bearer"

    def __init__(
        self,
        verify: Verify | str,
        *,
        name: str | None = None,
        realm: str | None = None,
        query_param: str | None = "access_token",
        subprotocol_prefix: str | None = None,
        thread_sensitive: bool = True,
    ) -> None:
        func = _load_verify(verify)
        self.verify = func
        self._verify: Callable[[str], Awaitable[Any]]
        if _is_async(func):
            self._verify = func
        elif thread_sensitive:
            # Not sync_to_async(thread_sensitive=True): before Django's request there is
            # no request context, and every check in the process would queue on
            # asgiref's one global thread. A pooled worker per call keeps the ORM safe
            # (the call and its connection stay on one thread) without serialising.
            self._verify = functools.partial(
                run_sync_outside_request, _with_fresh_connections(func)
            )
        else:
            self._verify = sync_to_async(_with_fresh_connections(func), thread_sensitive=False)
        if name is not None:
            self.name = name
        # realm goes into a header (latin-1), query_param is matched as UTF-8.
        for option, value, charset in (
            ("realm", realm, "latin-1"),
            ("query_param", query_param, "utf-8"),
        ):
            if value is not None and (
                not isinstance(value, str)
                or not value
                or '"' in value
                or not value.isprintable()
                or not _encodable(value, charset)
            ):
                raise _error(
                    f"BearerTokenBackend {option}={value!r} must be a non-empty printable "
                    f"{charset} string without quotes, or None.",
                    "See the auth docs for the websocket token options.",
                    "E307",
                )
        if subprotocol_prefix is not None and (
            not isinstance(subprotocol_prefix, str) or not subprotocol_prefix
        ):
            raise _error(
                f"BearerTokenBackend subprotocol_prefix={subprotocol_prefix!r} must be a "
                "non-empty string such as 'bearer.', or None.",
                "The client then offers the subprotocol 'bearer.<token>'.",
                "E307",
            )
        self.realm = realm
        self.query_param = query_param
        self._query_key = query_param.encode() if query_param else None
        self.subprotocol_prefix = subprotocol_prefix
        params = [f'realm="{realm}"'] if realm else []
        self.challenge = " ".join(["Bearer", *params])
        self._invalid_token = "Bearer " + ", ".join([*params, 'error="invalid_token"'])
        self._invalid_request = "Bearer " + ", ".join([*params, 'error="invalid_request"'])

    def __repr__(self) -> str:
        return f"BearerTokenBackend(verify={self.verify!r})"

    def _bad_request(self, why: str) -> InvalidCredentials:
        return InvalidCredentials(self._invalid_request, 400, why)

    async def authenticate(self, scope: Scope) -> AuthInfo | None:
        token = self._http_token(scope) if scope["type"] == "http" else self._ws_token(scope)
        if token is None:
            return None
        try:
            result = await self._verify(token)
        except Exception:
            # Fail closed: a verify that raises on a hostile token must not let it in,
            # nor turn it into a 500.
            logger.warning("BearerTokenBackend verify raised; the token is refused.", exc_info=True)
            result = None
        info = _to_info(result, self.name)
        if info is None:
            raise InvalidCredentials(self._invalid_token, 401, "invalid_token")
        return info

    def _http_token(self, scope: Scope) -> str | None:
        token: bytes | None = None
        for name, value in scope["headers"]:
            if len(name) == 13 and name.lower() == b"authorization":
                m = _CREDENTIALS.fullmatch(value)
                if m is None or m.group(1).lower() != b"bearer":
                    continue  # another scheme (Basic, ...): not ours
                if token is not None:
                    raise self._bad_request("more than one bearer token")
                if not m.group(2).startswith(b" "):
                    # "Bearer<TAB>x" or "Bearer": RFC 6750 wants 1*SP then the token.
                    raise self._bad_request("malformed bearer credentials")
                token = m.group(2).strip(b" \t")
        if token is None:
            return None
        return self._checked(token)

    def _checked(self, token: bytes) -> str:
        if len(token) > _MAX_TOKEN or not _B64TOKEN.fullmatch(token):
            raise self._bad_request("malformed bearer token")
        return token.decode("ascii")

    def _ws_token(self, scope: Scope) -> str | None:
        tokens: list[bytes] = []
        key = self._query_key
        qs: bytes = scope.get("query_string", b"")
        if key is not None and qs:
            kept = []
            for part in qs.split(b"&"):
                k, eq, v = part.partition(b"=")
                if eq and unquote_to_bytes(k.replace(b"+", b" ")) == key:
                    tokens.append(unquote_to_bytes(v.replace(b"+", b" ")))
                else:
                    kept.append(part)
            if tokens:
                scope["query_string"] = b"&".join(kept)
        prefix = self.subprotocol_prefix
        if prefix is not None:
            protocols = scope.get("subprotocols") or ()
            rest = [p for p in protocols if not p.startswith(prefix)]
            if len(rest) != len(protocols):
                # Removed before any refusal: a token is never echoed back on accept,
                # and the app never sees it, in "subprotocols" or in the handshake's
                # Sec-WebSocket-Protocol header that every server also passes on.
                scope["subprotocols"] = rest
                scope["headers"] = _without_protocols(scope["headers"], prefix)
                for p in protocols:
                    if p not in rest:
                        try:
                            tokens.append(p[len(prefix) :].encode("ascii"))
                        except UnicodeEncodeError:
                            # A b64token is ASCII: anything else (a server may hand over
                            # surrogate-escaped bytes) is malformed, never a crash.
                            raise self._bad_request("malformed bearer token") from None
        if not tokens:
            return None
        if len(tokens) > 1:
            raise self._bad_request("more than one bearer token")
        return self._checked(tokens[0])
