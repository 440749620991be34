"""Grammar and origin parsing for the CORS layer: what a serialised origin, a token and
a configured origin look like, and how untrusted values are rendered in logs.

Shared by the configuration (``config``) and the per-request path (``middleware``).
"""

from __future__ import annotations

import re
from typing import Final, NoReturn

from middleware_stack import StackConfigurationError

#: Methods a browser sends without asking (CORS-safelisted methods): always allowed.
SAFELISTED_METHODS: Final = frozenset({b"GET", b"HEAD", b"POST"})
#: The methods Fetch normalises to uppercase; any other method is sent as written.
_NORMALISED_METHODS: Final = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"})
_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ws": 80, "wss": 443}
#: Browsers cap Access-Control-Max-Age (Chromium at 2 hours, Firefox at 24 hours).
MAX_AGE_CAP: Final = 86400
#: More requested header names than this in one preflight is not a browser.
MAX_REQUEST_HEADERS: Final = 128
_MAX_ORIGIN_LEN: Final = 2048

# RFC 9110 token: the grammar of method and header field names.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN_B = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# A serialised origin as browsers send it (lowercase, default port omitted is checked
# separately): scheme "://" host [":" port]. "null" and "file://" are only ever exact.
_ORIGIN_B = re.compile(
    rb"([a-z][a-z0-9+.\-]*)://([a-z0-9\-._~]+|\[[0-9a-f:.]+\])(?::([1-9][0-9]{0,4}))?"
)
# One element of a comma-separated list, trimmed of whitespace; never backtracks far.
_ELEMENT_B = re.compile(rb"[^,\s](?:[^,]*[^,\s])?")
_WS = b" \t"

#: Stands for "several Origin lines": never allowed (not a serialised origin).
_DUPLICATE: Final = b"\x00duplicate"
_ACAO: Final = b"access-control-allow-origin"
_ACAC: Final = (b"access-control-allow-credentials", b"true")
_ACAPN: Final = (b"access-control-allow-private-network", b"true")
_VARY_ORIGIN: Final = (b"vary", b"Origin")
_PREFLIGHT_VARY: Final = b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"


def escape(value: bytes | str, limit: int = 200) -> str:
    """A printable-ASCII rendering of an untrusted value, for log lines and debug bodies.

    Control characters (CR/LF included), backslashes, quotes and non-ASCII become
    ``\\xNN`` escapes, so a hostile header can neither forge a log line nor inject a header.
    """
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    cut = len(text) > limit
    out = "".join(
        c if " " <= c < "\x7f" and c not in "\\'" else f"\\x{ord(c):02x}" for c in text[:limit]
    )
    return f"'{out}'" + ("..." if cut else "")


def _valid_origin(origin: bytes) -> re.Match[bytes] | None:
    """The parts of a serialised, non-opaque origin; None for anything a browser never sends."""
    if len(origin) > _MAX_ORIGIN_LEN:
        return None
    m = _ORIGIN_B.fullmatch(origin)
    if m is None:
        return None
    port = m.group(3)
    if port is not None and (
        int(port) > 65535 or _DEFAULT_PORTS.get(m.group(1).decode()) == int(port)
    ):
        return None
    return m


def _normalise_origin(raw: str, label: str) -> tuple[str, str | None]:
    """``(normalised origin, wildcard suffix or None)``; raises for anything malformed."""

    def fail(msg: str, hint: str) -> NoReturn:
        raise StackConfigurationError(
            f"{label} contains {raw!r}: {msg}", hint=hint, id="middleware_stack.E102"
        )

    if raw in ("null", "file://"):
        return raw, None
    text = raw.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        guess = "https://" + text.split("/")[0] if text and "/" not in text[:1] else None
        fail(
            "an origin needs a scheme.",
            f"Did you mean {guess!r}?" if guess else "Write it as 'https://host[:port]'.",
        )
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*", scheme):
        fail(f"{scheme!r} is not a URL scheme.", "Write it as 'https://host[:port]'.")
    netloc, slash, path = rest.partition("/")
    bare = f"{scheme.lower()}://{netloc}"
    if slash and not path:
        fail("an origin has no trailing '/'.", f"Did you mean {bare!r}?")
    if slash or "?" in netloc or "#" in netloc:
        bare = f"{scheme.lower()}://{re.split(r'[?#]', netloc)[0]}"
        fail(
            "an origin has no path, query or fragment (browsers send only scheme, host and port).",
            f"Did you mean {bare!r}?",
        )
    if "@" in netloc:
        fail("an origin has no user information.", "Remove the part before '@'.")
    if netloc.startswith("*.["):
        fail("a '*.' pattern needs a domain name.", "Write it as 'https://*.example.com'.")
    host, port = netloc, ""
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            fail("the IPv6 address has no closing ']'.", "Write it as 'http://[::1]:8000'.")
        host, port = netloc[: end + 1], netloc[end + 1 :]
        if port and not port.startswith(":"):
            fail("unexpected text after the IPv6 address.", "Write it as 'http://[::1]:8000'.")
        port = port[1:]
    elif ":" in netloc:
        host, _, port = netloc.rpartition(":")
    if port:
        if not port.isdigit() or not 0 < int(port) <= 65535:
            fail(f"{port!r} is not a port number.", "Use a number from 1 to 65535.")
        port_num = int(port)
        port = "" if _DEFAULT_PORTS.get(scheme.lower()) == port_num else f":{port_num}"
    wildcard = None
    if host.startswith("*."):
        wildcard = host[1:]
        host = host[2:]
    if "*" in host:
        fail(
            "'*' is only allowed as the whole origin or as the first label "
            "('https://*.example.com').",
            "Use allow_origin_regex for other patterns.",
        )
    if not host:
        fail("the host is empty.", "Write it as 'https://host[:port]'.")
    if not host.startswith("["):
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            fail("the host is not a valid domain name.", "Check the spelling.")
        if not re.fullmatch(r"[a-z0-9\-_~]+(\.[a-z0-9\-_~]+)*", host):
            fail("the host is not a valid host name.", "Check the spelling.")
    else:
        host = host.lower()
    if wildcard is not None:
        return f"{scheme.lower()}://*.{host}{port}", "." + host
    return f"{scheme.lower()}://{host}{port}", None


def _unescaped_dots(pattern: str) -> bool:
    """True when the regex has a ``.`` that looks meant as a literal (``example.com``)."""
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "." and i + 1 < len(pattern) and (pattern[i + 1].isalnum()):
            return True
        i += 1
    return False


def wildcard_admits(
    origin: bytes, parts: re.Match[bytes], wild: tuple[bytes, bytes, bytes]
) -> bool:
    """Whether ``https://*.example.com``-style ``wild`` (scheme prefix, ``.suffix``, port)
    admits ``origin``, whose :func:`_valid_origin` match is ``parts``: any depth of
    subdomain, never the apex, no empty label."""
    prefix, suffix, want_port = wild
    host = parts.group(2)
    return (
        origin.startswith(prefix)
        and host.endswith(suffix)
        and len(host) > len(suffix)
        and (parts.group(3) or b"") == want_port
        and not host.startswith(b".")
        and b".." not in host
    )
