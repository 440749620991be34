"""``TrustedHeaderBackend``: an identity header believed only from trusted proxies."""

from __future__ import annotations

import ipaddress
import re
import warnings
from collections.abc import Iterable
from typing import Any

from middleware_stack import StackWarning
from middleware_stack.contrib.auth.base import (
    _MAX_IDENTITY,
    _NOTHING,
    AuthInfo,
    Headers,
    _error,
    _tuple_new,
    logger,
)
from middleware_stack.scope import log_safe
from middleware_stack.types import Scope

__all__ = ["TrustedHeaderBackend"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: RFC 9110 token characters, the only ones allowed in a header name.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: RFC 6750 b64token.


def _meta_key(name: bytes) -> str:
    return name.decode("latin-1").upper().replace("-", "_")


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
    padded, holding non-printable characters, or a comma-joined list."""
    if b"," in raw:
        return None
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


#: At most this many identities, each at most ``_IDENTITY_KEY`` bytes, are remembered
#: per backend (see ``_identities``): half a megabyte at worst.
_IDENTITIES = 1024
_IDENTITY_KEY = 256

#: The longest client address worth caching: an IPv6 address with an IPv4 tail (45)
#: and an interface zone id.
_MAX_HOST = 64


def _host(client: Any) -> Any:
    """The client address to judge: ``None`` only for a connection without one (a Unix
    socket); an empty or malformed ``client`` is ``""``, which nothing trusts."""
    if client is None:
        return None
    try:
        return client[0]
    except (TypeError, IndexError, KeyError):
        return ""


class TrustedHeaderBackend:
    """An identity set by an authenticating proxy in a header, believed only from it.

    The header is accepted only when the connection comes from ``trusted_proxies``
    (addresses or CIDR networks; IPv4-mapped IPv6 clients match IPv4 networks; a client
    address with an IPv6 zone id, ``fe80::1%eth1``, matches only an entry naming the same
    zone; ``"unix"`` trusts connections whose ``scope["client"]`` is ``None``, i.e. a
    Unix socket, never an empty address), and only under its exact name (any case,
    ``-`` as written): a proxy that sets ``X-Forwarded-User`` leaves the client's
    ``X_Forwarded_User`` alone, so another spelling is never an identity. Every other
    spelling that Django's ``request.META`` key could confuse with it (``_`` for ``-``;
    ``ß`` for ``ss``) is removed from the scope's headers and logged once at warning,
    from trusted and untrusted clients alike: patched Django (CVE-2026-3902) drops
    ``_`` headers under ASGI, older releases and other readers fold them into the same
    key. From an untrusted client the exact header is removed too. Two copies from a
    trusted proxy, or one holding a comma-joined list (``alice, admin``, which is what
    Django makes of two copies), are ambiguous and refused, as are empty and
    non-printable values.
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
        # The one spelling that may carry an identity: the name as configured, any case,
        # with "-" (a configured "_" is read as "-": no proxy sets "_" names).
        self._target = header.lower().replace("_", "-").encode("latin-1")
        self._length = len(self._target)
        # The spellings removed: those whose request.META key (name.upper() with "-" as
        # "_", on the latin-1 text) is the header's. Patched Django (CVE-2026-3902) drops
        # "_" names under ASGI rather than folding them, older releases fold them; other
        # readers of scope["headers"] see them either way. "\xdf".upper() == "SS": when
        # the name holds "ss", a name one byte shorter per "ss" lands on the same key.
        # Only such names need the slow comparison, and only such header names pay.
        self._meta_key = _meta_key(self._target)
        self._short = self._length - self._target.count(b"ss")
        if self._short < self._length:
            self.inspect_headers = self._inspect_sharp  # type: ignore[method-assign]
        self._networks, self._unix = _parse_networks(trusted_proxies)
        self._v4 = tuple(n for n in self._networks if n.version == 4)
        self._v6 = tuple(n for n in self._networks if n.version == 6)
        self._v6_unzoned = tuple(n for n in self._v6 if n.network_address.scope_id is None)
        self.trusted_proxies = tuple(str(n) for n in self._networks) + (
            ("unix",) if self._unix else ()
        )
        if name is not None:
            self.name = name
        # Client address -> trusted?  Parsed once per address; bounded so a flood of
        # distinct (IPv6) clients costs re-parsing, never memory.
        self._cache: dict[Any, bool] = {}
        self._cache_size = cache_size
        # Header value -> identity, for values already judged valid from a trusted
        # proxy: the checks of _identity() cost a quarter of the layer's time. Filled
        # until full, then only read; longer values are judged every time.
        self._identities: dict[bytes, str] = {}
        # Another spelling is logged at warning the first time only: a client sending
        # one on every request must not flood the log.
        self._variant_logged = False

    def __repr__(self) -> str:
        return (
            f"TrustedHeaderBackend(header={self.header!r}, "
            f"trusted_proxies={list(self.trusted_proxies)!r})"
        )

    def is_trusted(self, client: Any) -> bool:
        """Whether ``scope["client"]`` is one of the trusted proxies (cached)."""
        host = _host(client)
        cache = self._cache
        trusted = cache.get(host)
        if trusted is None:
            trusted = self._check(host)
            if host is not None and not (isinstance(host, str) and len(host) <= _MAX_HOST):
                # Behind --proxy-headers the host comes from X-Forwarded-For: a client's
                # long junk is judged every time, never kept (the cache is bounded in
                # size, not only in entries).
                return trusted
            if len(cache) >= self._cache_size:
                try:
                    del cache[next(iter(cache))]
                except (KeyError, RuntimeError, StopIteration):
                    cache.clear()
            cache[host] = trusted
        return trusted

    def _check(self, host: Any) -> bool:
        if host is None:
            return self._unix
        if not isinstance(host, str) or not host:
            return False
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address):
            zone = ip.scope_id
            if zone is not None:
                # A link-local address means a different host on every interface: only
                # an entry with the same zone id names it (ipaddress ignores zones in
                # "in", so fe80::1%eth1 would match fe80::1).
                return any(ip in n and n.network_address.scope_id == zone for n in self._v6)
            mapped = ip.ipv4_mapped
            if mapped is not None:
                return any(mapped in n for n in self._v4)
            return any(ip in n for n in self._v6_unzoned)
        return any(ip in n for n in self._v4)

    def _matches(self, name: bytes) -> bool:
        """Whether ``name``'s ``request.META`` key (as unpatched Django folds it) is the
        header's: the exact name or another spelling of it."""
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
        variants = 0
        found = b""
        for name, value in headers:
            if len(name) == length:
                if name == target:
                    count += 1
                    found = value
                else:
                    low = name.lower()
                    if low == target:
                        count += 1
                        found = value
                    elif low.replace(b"_", b"-") == target:
                        variants += 1
        if not count and not variants:
            return _NOTHING
        if count == 1 and not variants and self._cache.get(_host(scope.get("client"))):
            # Inlined fast path of _judge(): one copy from a known-trusted client.
            identity = self._identities.get(found)
            if identity is None:
                identity = _identity(found)
                if (
                    identity is not None
                    and len(found) <= _IDENTITY_KEY
                    and len(self._identities) < _IDENTITIES
                ):
                    self._identities[found] = identity
            if identity is not None:
                return _tuple_new(AuthInfo, (identity, self.name, {})), None
        return self._judge(scope, headers, count, variants, found)

    def _inspect_sharp(self, scope: Scope, headers: Headers) -> tuple[AuthInfo | None, Any]:
        target = self._target
        count = 0
        variants = 0
        found = b""
        for name, value in headers:
            if self._matches(name):
                if name.lower() == target:
                    count += 1
                    found = value
                else:
                    variants += 1
        if not count and not variants:
            return _NOTHING
        return self._judge(scope, headers, count, variants, found)

    def _judge(
        self, scope: Scope, headers: Headers, count: int, variants: int, found: bytes
    ) -> tuple[AuthInfo | None, Any]:
        client = scope.get("client")
        host = _host(client)
        trusted = self._cache.get(host)
        if trusted is None:
            trusted = self.is_trusted(client)
        shown = "unix" if host is None else log_safe(host, 100)
        if variants:
            log = logger.debug if self._variant_logged else logger.warning
            self._variant_logged = True
            log(
                "Removed %d header(s) spelt differently from %s (with '_' or another form "
                "Django could file under the same request.META key) from %s client %s: "
                "only the exact name may carry an identity. Further ones are logged at "
                "debug level.",
                variants,
                self.header,
                "trusted" if trusted else "untrusted",
                shown,
            )
        info: AuthInfo | None = None
        if trusted and count == 1:
            identity = _identity(found)
            if identity is not None:
                info = AuthInfo(identity, self.name, {})
            elif b"," in found:
                logger.warning(
                    "Refused %s from trusted proxy %s: a comma-joined value is ambiguous "
                    "(two identities, or the client's copy joined to the proxy's); make the "
                    "proxy replace the client's header instead of appending to it.",
                    self.header,
                    shown,
                )
            else:
                logger.warning(
                    "Refused %s from trusted proxy %s: the value is empty, too long or not "
                    "printable UTF-8.",
                    self.header,
                    shown,
                )
        elif trusted and count > 1:
            logger.warning(
                "Refused %s from trusted proxy %s: %d copies are ambiguous; make the "
                "proxy replace the client's header instead of appending to it.",
                self.header,
                shown,
                count,
            )
        if info is not None:
            # Believed: only the other spellings go.
            target = self._target
            match = self._matches
            return info, [h for h in headers if not match(h[0]) or h[0].lower() == target]
        match = self._matches
        return None, [h for h in headers if not match(h[0])]
