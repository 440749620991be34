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

from __future__ import annotations

import functools
import ipaddress
import logging
import re
import warnings
from collections.abc import Awaitable, Callable, Iterable, Mapping
from operator import itemgetter
from typing import Any
from urllib.parse import unquote_to_bytes

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.utils.module_loading import import_string

from middleware_stack import StackConfigurationError, StackWarning
from middleware_stack.types import Scope

__all__ = [
    "AuthInfo",
    "BearerTokenBackend",
    "InvalidCredentials",
    "TrustedHeaderBackend",
]

logger = logging.getLogger("middleware_stack.contrib.auth")

Headers = list[tuple[bytes, bytes]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: RFC 9110 token characters, the only ones allowed in a header name.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: RFC 6750 b64token.
_B64TOKEN = re.compile(rb"[A-Za-z0-9\-._~+/]+=*")
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


def _meta_key(name: bytes) -> str:
    return name.decode("latin-1").upper().replace("-", "_")


def _encodable(text: str, charset: str) -> bool:
    try:
        text.encode(charset)
    except UnicodeEncodeError:
        return False
    return True


def valid_identity(value: str) -> bool:
    """Non-empty, printable, no surrounding whitespace, bounded: else refused."""
    return 0 < len(value) <= _MAX_IDENTITY and value.isprintable() and value.strip() == value


# -- TrustedHeaderBackend ------------------------------------------------------------


def _parse_networks(trusted_proxies: Any) -> tuple[tuple[Network, ...], bool]:
    if isinstance(trusted_proxies, str | bytes) or not isinstance(trusted_proxies, Iterable):
        raise _error(
            f"TrustedHeaderBackend trusted_proxies={trusted_proxies!r} is not a list.",
            "Write a list of addresses or CIDR networks, e.g. "
            "trusted_proxies=['127.0.0.1', '10.0.0.0/8', '::1'].",
            "E302",
        )
    networks: list[Network] = []
    unix = False
    for item in trusted_proxies:
        if item == "unix":
            unix = True
            continue
        if not isinstance(item, str | ipaddress.IPv4Network | ipaddress.IPv6Network):
            raise _error(
                f"TrustedHeaderBackend trusted_proxies contains {item!r}, which is not a string.",
                "Write each proxy as a string: '10.0.0.5', '10.0.0.0/8' or '2001:db8::/32'.",
                "E302",
            )
        try:
            net = ipaddress.ip_network(item)
        except ValueError as exc:
            text = str(item)
            try:
                loose = ipaddress.ip_network(text, strict=False)
                fix = f"Did you mean {str(loose)!r}? The host bits must be zero."
            except ValueError:
                fix = "Write an IPv4/IPv6 address or CIDR network such as '10.0.0.0/8'."
            raise _error(
                f"TrustedHeaderBackend trusted_proxies contains {item!r}, which is not a valid "
                f"address or network ({exc}).",
                fix,
                "E302",
            ) from exc
        if isinstance(net, ipaddress.IPv6Network):
            mapped = net.network_address.ipv4_mapped
            if mapped is not None and net.prefixlen >= 96:
                # ::ffff:10.0.0.0/104 is 10.0.0.0/8: clients are compared in IPv4 form.
                net = ipaddress.IPv4Network(f"{mapped}/{net.prefixlen - 96}")
        if net.prefixlen == 0:
            warnings.warn(
                StackWarning(
                    f"TrustedHeaderBackend trusted_proxies contains {item!r}, which trusts "
                    "every client: anyone who can reach the server can claim any identity.",
                    hint="List only the addresses of your authenticating proxy.",
                    id="middleware_stack.W301",
                ),
                stacklevel=4,
            )
        networks.append(net)
    return tuple(networks), unix


def _identity(raw: bytes) -> str | None:
    """The header value as an identity, or None if empty, too long, not UTF-8,
    padded, or holding non-printable characters."""
    try:
        identity = raw.decode()
    except UnicodeDecodeError:
        return None
    if (
        0 < len(identity) <= _MAX_IDENTITY
        and identity.isprintable()
        and identity.strip() == identity
    ):
        return identity
    return None


class TrustedHeaderBackend:
    """An identity set by an authenticating proxy in a header, believed only from it.

    The header is accepted only when the connection comes from ``trusted_proxies``
    (addresses or CIDR networks; IPv4-mapped IPv6 clients match IPv4 networks;
    ``"unix"`` trusts connections without a client address, i.e. a Unix socket).
    From anyone else every copy is removed from the scope's headers, whatever its case
    and whether it is spelt with ``_`` or ``-``: Django folds both spellings into the
    same ``request.META`` key, so a copy left behind would reach ``RemoteUserMiddleware``
    or a view reading ``META``. Two copies from a trusted proxy are ambiguous (one may
    be the client's, passed through) and are refused, as are empty and non-printable
    values.
    """

    name = "trusted-header"
    challenge: str | None = None

    def __init__(
        self,
        header: str = "X-Forwarded-User",
        trusted_proxies: Iterable[str] = ("127.0.0.1", "::1"),
        *,
        name: str | None = None,
        cache_size: int = 4096,
    ) -> None:
        if not isinstance(header, str) or not _TOKEN.fullmatch(header):
            raise _error(
                f"TrustedHeaderBackend header={header!r} is not a valid HTTP header name.",
                "Use the header your proxy sets, e.g. header='X-Forwarded-User'.",
                "E303",
            )
        if not isinstance(cache_size, int) or cache_size < 1:
            raise _error(
                f"TrustedHeaderBackend cache_size={cache_size!r} must be a positive integer.",
                "It bounds the cache of client addresses already checked; the default is 4096.",
                "E307",
            )
        self.header = header
        self._target = header.lower().replace("_", "-").encode("latin-1")
        self._length = len(self._target)
        # Django's request.META key for a header is name.upper().replace("-", "_") on the
        # latin-1 text, and "\xdf".upper() == "SS": when the name holds "ss", a name one
        # byte shorter per "ss" lands on the same key. Only such names need the slow
        # comparison, and only such header names pay for it.
        self._meta_key = _meta_key(self._target)
        self._short = self._length - self._target.count(b"ss")
        if self._short < self._length:
            self.inspect_headers = self._inspect_sharp  # type: ignore[method-assign]
        self._networks, self._unix = _parse_networks(trusted_proxies)
        self._v4 = tuple(n for n in self._networks if n.version == 4)
        self._v6 = tuple(n for n in self._networks if n.version == 6)
        self.trusted_proxies = tuple(str(n) for n in self._networks) + (
            ("unix",) if self._unix else ()
        )
        if name is not None:
            self.name = name
        # Client address -> trusted?  Parsed once per address; bounded so a flood of
        # distinct (IPv6) clients costs re-parsing, never memory.
        self._cache: dict[Any, bool] = {}
        self._cache_size = cache_size

    def __repr__(self) -> str:
        return (
            f"TrustedHeaderBackend(header={self.header!r}, "
            f"trusted_proxies={list(self.trusted_proxies)!r})"
        )

    def is_trusted(self, client: Any) -> bool:
        """Whether ``scope["client"]`` is one of the trusted proxies (cached)."""
        host = client[0] if client else None
        cache = self._cache
        trusted = cache.get(host)
        if trusted is None:
            trusted = self._check(host)
            if len(cache) >= self._cache_size:
                try:
                    del cache[next(iter(cache))]
                except (KeyError, RuntimeError, StopIteration):
                    cache.clear()
            cache[host] = trusted
        return trusted

    def _check(self, host: Any) -> bool:
        if host is None or host == "":
            return self._unix
        if not isinstance(host, str):
            return False
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address):
            mapped = ip.ipv4_mapped
            if mapped is not None:
                return any(mapped in n for n in self._v4)
            return any(ip in n for n in self._v6)
        return any(ip in n for n in self._v4)

    def _matches(self, name: bytes) -> bool:
        """Whether Django would file ``name`` under the same ``request.META`` key."""
        n = len(name)
        if n == self._length:
            return name == self._target or name.lower().replace(b"_", b"-") == self._target
        return self._short <= n < self._length and _meta_key(name) == self._meta_key

    def inspect_headers(self, scope: Scope, headers: Headers) -> tuple[AuthInfo | None, Any]:
        """The identity if believed; a copy of ``headers`` without the header if not.

        The hot path of every request: one pass with a length test per header, then a
        cached lookup of the client address.
        """
        target = self._target
        length = self._length
        count = 0
        found = b""
        for name, value in headers:
            if len(name) == length and (
                name == target or name.lower().replace(b"_", b"-") == target
            ):
                count += 1
                found = value
        if not count:
            return _NOTHING
        if count == 1:
            # Inlined fast path of _judge(): one copy from a known-trusted client.
            client = scope.get("client")
            if self._cache.get(client[0] if client else None):
                identity = _identity(found)
                if identity is not None:
                    return _tuple_new(AuthInfo, (identity, self.name, {})), None
        return self._judge(scope, headers, count, found)

    def _inspect_sharp(self, scope: Scope, headers: Headers) -> tuple[AuthInfo | None, Any]:
        count = 0
        found = b""
        for name, value in headers:
            if self._matches(name):
                count += 1
                found = value
        if not count:
            return _NOTHING
        return self._judge(scope, headers, count, found)

    def _judge(
        self, scope: Scope, headers: Headers, count: int, found: bytes
    ) -> tuple[AuthInfo | None, Any]:
        client = scope.get("client")
        trusted = self._cache.get(client[0] if client else None)
        if trusted is None:
            trusted = self.is_trusted(client)
        if trusted:
            if count == 1:
                identity = _identity(found)
                if identity is not None:
                    return AuthInfo(identity, self.name, {}), None
                logger.warning(
                    "Refused %s from trusted proxy %s: the value is empty, too long or not "
                    "printable UTF-8.",
                    self.header,
                    client[0] if client else "unix",
                )
            else:
                logger.warning(
                    "Refused %s from trusted proxy %s: %d copies (counting '_' and case "
                    "variants) are ambiguous; make the proxy replace the client's header "
                    "instead of appending to it.",
                    self.header,
                    client[0] if client else "unix",
                    count,
                )
        match = self._matches
        return None, [h for h in headers if not match(h[0])]


# -- BearerTokenBackend --------------------------------------------------------------

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
    return AuthInfo(identity, backend, dict(claims) if claims else {})


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


class BearerTokenBackend:
    """``Authorization: Bearer <token>`` (RFC 6750), checked by your ``verify``.

    ``verify(token)`` is a callable or its dotted path, sync or async; it returns the
    identity (a ``str``, or an object or mapping with ``identity`` and ``claims``) or
    ``None`` for a token it rejects. A sync ``verify`` runs through ``sync_to_async``
    (``thread_sensitive`` as given; keep the default ``True`` if it touches the ORM),
    never on the event loop. It runs before Django's request, whose signals close
    stale database connections, so it runs between two such closings of its own
    (connections in an atomic block excepted): ``CONN_MAX_AGE`` holds, and a
    connection the database dropped is replaced. A rejected token is refused with 401 and
    ``WWW-Authenticate: Bearer error="invalid_token"``, never treated as anonymous; a
    malformed or repeated header gets 400 ``invalid_request``.

    Browsers cannot set headers on a WebSocket, so for ``websocket`` scopes the token is
    read from the query parameter ``query_param`` (default ``access_token``) or from a
    subprotocol ``subprotocol_prefix + token`` (e.g. ``"bearer."``); either is removed
    from the scope before the application sees it.
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
        self._verify: Callable[[str], Awaitable[Any]] = (
            func
            if _is_async(func)
            else sync_to_async(_with_fresh_connections(func), thread_sensitive=thread_sensitive)
        )
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
                scheme, _, rest = value.strip().partition(b" ")
                if scheme.lower() != b"bearer":
                    continue
                if token is not None:
                    raise self._bad_request("more than one bearer token")
                token = rest.strip()
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
                # Removed before any refusal: a token is never echoed back on accept.
                scope["subprotocols"] = rest
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
