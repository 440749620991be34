"""Fetch-standard CORS as a pure ASGI layer.

Every decision that can be made before the first request is made in ``__init__``:
configured origins are parsed and normalised (``HTTPS://Example.com:443`` becomes
``https://example.com``), methods and header names are checked against the HTTP token
grammar, and every constant response header is encoded to bytes once. The request path
is then a scan of the request headers, a set lookup for exact origins, and (for actual
requests) one pass over the response headers to drop any CORS header the app set and to
merge ``Vary``.

Strictness is deliberate: a browser only ever sends a serialised origin (lowercase
scheme and host, no default port), so anything else in ``Origin`` is not a browser and
gets no CORS headers at all. Preflights are checked in full (origin, method and every
requested header), and a refused preflight is a ``403`` without CORS headers, so the
browser's console and this layer's debug log tell the same story.

Given no policy option, the layer reads django-cors-headers' ``CORS_*`` settings, so a
project switches by listing this class in ``ASGI_MIDDLEWARE``.
"""

from __future__ import annotations

import difflib
import enum
import logging
import re
import warnings
from collections.abc import Iterable, Sequence
from typing import Any, Final, NoReturn

from middleware_stack import StackConfigurationError, StackWarning
from middleware_stack.scope import path_info
from middleware_stack.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CORSMiddleware"]

logger = logging.getLogger("middleware_stack.cors")


class _FromSettings(enum.Enum):
    """Default of every option: "not given". With no policy option given at all, the
    layer reads the ``CORS_*`` settings; with any given, unset options take strict
    defaults. A sentinel (not ``**kwargs``) keeps the builder's signature check able to
    list the accepted option names."""

    FROM_SETTINGS = "FROM_SETTINGS"

    def __repr__(self) -> str:
        return "FROM_SETTINGS"


FROM_SETTINGS: Final = _FromSettings.FROM_SETTINGS

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

#: django-cors-headers' defaults (corsheaders.defaults), used when reading settings.
CORSHEADERS_DEFAULT_METHODS: Final = ("DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT")
CORSHEADERS_DEFAULT_HEADERS: Final = (
    "accept",
    "authorization",
    "content-type",
    "user-agent",
    "x-csrftoken",
    "x-requested-with",
)


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


def _vary_has_origin(value: bytes) -> bool:
    for part in value.split(b","):
        part = part.strip(_WS).lower()
        if part == b"origin" or part == b"*":
            return True
    return False


def _patch_headers(
    headers: Iterable[Any], acao: bytes | None, tail: Sequence[Any], strip: bool = True
) -> list[Any]:
    """The app's response headers with our policy applied.

    Any ``access-control-*`` header the app set is dropped (the layer's policy replaces
    it); ``Origin`` is merged into the first ``Vary`` line unless a ``Vary`` line already
    covers it; ``acao`` and ``tail`` are added when the origin is allowed.
    """
    out: list[Any] = []
    vary_at = -1
    vary_ok = False
    for item in headers:
        name = item[0]
        if strip and name[:15] == b"access-control-":
            continue
        if name == b"vary":
            if vary_at < 0:
                vary_at = len(out)
            if not vary_ok:
                vary_ok = _vary_has_origin(item[1])
        out.append(item)
    if vary_at < 0:
        out.append(_VARY_ORIGIN)
    elif not vary_ok:
        value = bytes(out[vary_at][1])
        out[vary_at] = (b"vary", value + b", Origin" if value.strip(_WS) else b"Origin")
    if acao is not None:
        out.append((_ACAO, acao))
        out.extend(tail)
    return out


class _Config:
    """Options as given, or as read from the ``CORS_*`` settings, with the name under
    which each one should be mentioned in an error message."""

    def __init__(self, given: dict[str, Any], debug: Any) -> None:
        from django.conf import settings

        configured = settings.configured
        self.django_middleware: list[str] = (
            list(getattr(settings, "MIDDLEWARE", None) or []) if configured else []
        )
        self.names: dict[str, str] = {k: k for k in given}
        self.from_settings = all(v is FROM_SETTINGS for v in given.values())
        if debug is FROM_SETTINGS:
            debug = bool(getattr(settings, "DEBUG", False)) if configured else False
        self.debug = debug
        if not self.from_settings:
            self.values: dict[str, Any] = {
                "allow_origins": (),
                "allow_origin_regex": (),
                "allow_methods": (),
                "allow_headers": (),
                "expose_headers": (),
                "allow_credentials": False,
                "max_age": 0,
                "allow_private_network": False,
                "paths": None,
            }
            self.values.update({k: v for k, v in given.items() if v is not FROM_SETTINGS})
            return

        def get(name: str, default: Any, *aliases: str) -> tuple[str, Any]:
            for setting in (name, *aliases):
                if configured and hasattr(settings, setting):
                    return setting, getattr(settings, setting)
            return name, default

        table = {
            "allow_origins": get("CORS_ALLOWED_ORIGINS", (), "CORS_ORIGIN_WHITELIST"),
            "allow_origin_regex": get(
                "CORS_ALLOWED_ORIGIN_REGEXES", (), "CORS_ORIGIN_REGEX_WHITELIST"
            ),
            "allow_methods": get("CORS_ALLOW_METHODS", CORSHEADERS_DEFAULT_METHODS),
            "allow_headers": get("CORS_ALLOW_HEADERS", CORSHEADERS_DEFAULT_HEADERS),
            "expose_headers": get("CORS_EXPOSE_HEADERS", ()),
            "allow_credentials": get("CORS_ALLOW_CREDENTIALS", False),
            "max_age": get("CORS_PREFLIGHT_MAX_AGE", 86400),
            "allow_private_network": get("CORS_ALLOW_PRIVATE_NETWORK", False),
            "paths": get("CORS_URLS_REGEX", None),
        }
        self.values = {k: v for k, (_, v) in table.items()}
        self.names = {k: s for k, (s, _) in table.items()}
        all_setting, allow_all = get("CORS_ALLOW_ALL_ORIGINS", False, "CORS_ORIGIN_ALLOW_ALL")
        if allow_all is True:
            self.values["allow_origins"] = ["*", *self._seq("allow_origins", str)]
            self.names["allow_origins"] = f"{all_setting} = True / {self.names['allow_origins']}"
        elif not isinstance(allow_all, bool):
            self.fail(
                f"{all_setting} = {allow_all!r} is not a bool.",
                "Set it to True or False.",
                "E106",
            )
        paths = self.values["paths"]
        if paths in (r"^.*$", ".*", r"^.*", ""):
            self.values["paths"] = None

    def fail(self, msg: str, hint: str, code: str) -> NoReturn:
        raise StackConfigurationError(msg, hint=hint, id=f"middleware_stack.{code}")

    def label(self, key: str) -> str:
        return self.names[key]

    def _seq(self, key: str, *types: type) -> list[Any]:
        value = self.values[key]
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            example = f"[{value!r}]" if isinstance(value, str) else "['...']"
            self.fail(
                f"{self.label(key)} = {value!r} must be a list, not {type(value).__name__}.",
                f"Wrap it in a list: {example}.",
                "E106",
            )
        items = list(value)
        for item in items:
            if not isinstance(item, types):
                wanted = " or ".join(t.__name__ for t in types)
                self.fail(
                    f"{self.label(key)} contains {item!r}, which is not a {wanted}.",
                    f"List only {wanted} values.",
                    "E106",
                )
        return items

    def seq(self, key: str) -> list[str]:
        return self._seq(key, str)

    def flag(self, key: str) -> bool:
        value = self.values[key]
        if not isinstance(value, bool):
            self.fail(f"{self.label(key)} = {value!r} is not a bool.", "Use True or False.", "E106")
        return bool(value)


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


def _warn(msg: str, hint: str, code: str) -> None:
    warnings.warn(StackWarning(msg, hint=hint, id=f"middleware_stack.{code}"), stacklevel=3)


class CORSMiddleware:
    """Fetch-standard CORS; the CORS page of the documentation gives every option's reason.

    Options left at ``FROM_SETTINGS``: if *no* policy option is given (``debug`` aside),
    all of them come from django-cors-headers' ``CORS_*`` settings; if any is given, the
    others take strict defaults (no origin, only safelisted methods and headers).
    """

    #: Preflights must be answered before authentication can refuse them.
    stack_constraints = {"outside": ["middleware_stack.contrib.auth.AuthPassthroughMiddleware"]}

    def __init__(
        self,
        app: ASGIApp,
        allow_origins: Iterable[str] | _FromSettings = FROM_SETTINGS,
        allow_origin_regex: str | re.Pattern[str] | Iterable[Any] | _FromSettings = FROM_SETTINGS,
        allow_methods: Iterable[str] | _FromSettings = FROM_SETTINGS,
        allow_headers: Iterable[str] | _FromSettings = FROM_SETTINGS,
        expose_headers: Iterable[str] | _FromSettings = FROM_SETTINGS,
        allow_credentials: bool | _FromSettings = FROM_SETTINGS,
        max_age: int | _FromSettings = FROM_SETTINGS,
        allow_private_network: bool | _FromSettings = FROM_SETTINGS,
        paths: str | re.Pattern[str] | _FromSettings | None = FROM_SETTINGS,
        debug: bool | _FromSettings = FROM_SETTINGS,
    ) -> None:
        self.app = app
        conf = _Config(
            {
                "allow_origins": allow_origins,
                "allow_origin_regex": allow_origin_regex,
                "allow_methods": allow_methods,
                "allow_headers": allow_headers,
                "expose_headers": expose_headers,
                "allow_credentials": allow_credentials,
                "max_age": max_age,
                "allow_private_network": allow_private_network,
                "paths": paths,
            },
            debug,
        )
        self.from_settings = conf.from_settings
        if not isinstance(conf.debug, bool):
            conf.fail(f"debug = {conf.debug!r} is not a bool.", "Use True or False.", "E106")
        self.debug: bool = conf.debug
        self.allow_credentials = credentials = conf.flag("allow_credentials")
        self.allow_private_network = conf.flag("allow_private_network")

        # -- origins ----------------------------------------------------------------
        origins_label = conf.label("allow_origins")
        exact: list[str] = []
        self._patterns: list[str] = []
        wild: list[tuple[bytes, bytes, bytes]] = []
        allow_all = False
        for raw in conf.seq("allow_origins"):
            if raw == "*":
                allow_all = True
                continue
            origin, suffix = _normalise_origin(raw, origins_label)
            if suffix is None:
                exact.append(origin)
                continue
            self._patterns.append(origin)
            scheme, _, hostport = origin.partition("://*")
            host, _, port = hostport.partition(":")
            wild.append((f"{scheme}://".encode(), host.encode(), port.encode()))
        if allow_all and credentials:
            conf.fail(
                f"{origins_label} allows every origin ('*') together with "
                f"{conf.label('allow_credentials')} = True. Browsers refuse "
                "'Access-Control-Allow-Origin: *' on credentialed requests, and reflecting any "
                "origin instead would let every website act as the signed-in user.",
                "List the origins that may send credentials, or turn credentials off.",
                "E101",
            )
        if allow_all and exact and set(exact) - {"null", "file://"}:
            _warn(
                f"{origins_label} lists '*' and specific origins; '*' already allows them.",
                "Remove either '*' or the specific origins.",
                "W106",
            )
        if "null" in exact and credentials:
            _warn(
                f"{origins_label} allows the 'null' origin with credentials. Sandboxed iframes "
                "and data: URLs of any site send 'Origin: null', so any site can act as the "
                "signed-in user.",
                "Remove 'null', or turn credentials off.",
                "W104",
            )

        regexes: list[re.Pattern[str]] = []
        raw_regex = conf.values["allow_origin_regex"]
        regex_label = conf.label("allow_origin_regex")
        if raw_regex is None:
            raw_regex = ()
        if isinstance(raw_regex, str | re.Pattern):
            raw_regex = [raw_regex]
        conf.values["allow_origin_regex"] = raw_regex
        for item in conf._seq("allow_origin_regex", str, re.Pattern):
            regex = self._compile(item, regex_label)
            regexes.append(regex)
            if not re.search(r"(?<!\\)(\$|\\Z)\)*$", regex.pattern):
                _warn(
                    f"{regex_label} pattern {regex.pattern!r} is not end-anchored. This layer "
                    "matches the whole origin, but django-cors-headers and most readers take "
                    "an unanchored pattern as a prefix match (so 'https://example\\.com' would "
                    "also allow 'https://example.com.evil.net' there).",
                    "End the pattern with '$' to make the full match explicit.",
                    "W102",
                )
            if _unescaped_dots(regex.pattern):
                _warn(
                    f"{regex_label} pattern {regex.pattern!r} has an unescaped '.' in the host: "
                    "'.' matches any character, so 'example.com' also matches 'exampleXcom'.",
                    "Escape literal dots as '\\.'.",
                    "W103",
                )
        self._regexes = tuple(regexes)
        self._regex_sources = [r.pattern for r in regexes]
        self.allow_all_origins = allow_all
        self._exact = frozenset(o.encode("ascii") for o in exact)
        self._exact_list = exact
        self._wild = tuple(wild)
        self._slow = bool(allow_all or wild or regexes)
        self._star = allow_all
        if not (exact or allow_all or wild or regexes):
            _warn(
                "The CORS layer allows no origin, so every cross-origin request is refused.",
                f"Set {origins_label} (or {regex_label}).",
                "W108",
            )

        if "corsheaders.middleware.CorsMiddleware" in conf.django_middleware:
            _warn(
                "django-cors-headers' CorsMiddleware is still in MIDDLEWARE. Preflights no "
                "longer reach it and this layer replaces its headers, so it only costs time.",
                "Remove 'corsheaders.middleware.CorsMiddleware' from MIDDLEWARE (and "
                "'corsheaders' from INSTALLED_APPS).",
                "W109",
            )

        # -- methods ----------------------------------------------------------------
        methods_label = conf.label("allow_methods")
        methods = conf.seq("allow_methods")
        self._any_method = "*" in methods
        allowed_methods: list[str] = []
        for m in methods:
            if m == "*":
                continue
            if not _TOKEN.fullmatch(m):
                conf.fail(
                    f"{methods_label} contains {m!r}, which is not an HTTP method name.",
                    "Method names are tokens such as 'PATCH', without spaces or commas.",
                    "E104",
                )
            if m.upper() in _NORMALISED_METHODS and m != m.upper():
                _warn(
                    f"{methods_label} contains {m!r}. Browsers send {m.upper()!r}, and method "
                    "names are compared case-sensitively, so it never matches.",
                    f"Write {m.upper()!r}.",
                    "W101",
                )
            elif m != m.upper():
                _warn(
                    f"{methods_label} contains {m!r} in lowercase. Browsers send it as written "
                    "by the page's script and compare case-sensitively; most APIs expect "
                    f"{m.upper()!r}.",
                    f"Write {m.upper()!r} unless your clients really send {m!r}.",
                    "W101",
                )
            if m not in allowed_methods:
                allowed_methods.append(m)
        self._methods = frozenset(m.encode() for m in allowed_methods) | SAFELISTED_METHODS
        others = [m for m in allowed_methods if m not in ("GET", "HEAD", "POST")]
        acam = b", ".join(m.encode() for m in ["GET", "HEAD", "POST", *others])

        # -- headers ----------------------------------------------------------------
        headers_label = conf.label("allow_headers")
        names = self._tokens(conf.seq("allow_headers"), headers_label)
        self._any_header = "*" in names
        names = [n for n in names if n != "*"]
        self._headers = frozenset(n.encode() for n in names)
        expose_label = conf.label("expose_headers")
        expose = self._tokens(conf.seq("expose_headers"), expose_label)
        if "*" in expose and credentials:
            conf.fail(
                f"{expose_label} contains '*' with {conf.label('allow_credentials')} = True. "
                "On credentialed responses browsers read '*' as a header literally named '*', "
                "so nothing is exposed.",
                "List the header names to expose.",
                "E107",
            )

        # -- max age, paths -----------------------------------------------------------
        max_age_value = conf.values["max_age"]
        if max_age_value is None:
            max_age_value = 0
        if isinstance(max_age_value, bool) or not isinstance(max_age_value, int):
            conf.fail(
                f"{conf.label('max_age')} = {max_age_value!r} is not a whole number of seconds.",
                "Use an int such as 600 (0 sends no Access-Control-Max-Age).",
                "E106",
            )
        if max_age_value < 0:
            conf.fail(
                f"{conf.label('max_age')} = {max_age_value!r} is negative.",
                "Use 0 (no caching) or a positive number of seconds.",
                "E106",
            )
        if max_age_value > MAX_AGE_CAP:
            _warn(
                f"{conf.label('max_age')} = {max_age_value} is above {MAX_AGE_CAP} seconds; "
                "browsers cap it (Firefox at 24 hours, Chromium at 2 hours).",
                f"Use at most {MAX_AGE_CAP}.",
                "W105",
            )
        self.max_age = max_age_value
        raw_paths = conf.values["paths"]
        self._paths = None if raw_paths is None else self._compile(raw_paths, conf.label("paths"))

        # -- precomputed headers --------------------------------------------------------
        tail: list[tuple[bytes, bytes]] = []
        if credentials:
            tail.append(_ACAC)
        if expose:
            tail.append((b"access-control-expose-headers", ", ".join(expose).encode()))
        self._tail = tuple(tail)
        preflight: list[tuple[bytes, bytes]] = []
        if credentials:
            preflight.append(_ACAC)
        if not self._any_method:
            preflight.append((b"access-control-allow-methods", acam))
        if names and not self._any_header:
            preflight.append((b"access-control-allow-headers", ", ".join(names).encode()))
        if self.max_age > 0:
            preflight.append((b"access-control-max-age", str(self.max_age).encode()))
        vary = _PREFLIGHT_VARY
        if self.allow_private_network:
            vary += b", Access-Control-Request-Private-Network"
        self._preflight_vary = (b"vary", vary)
        preflight.append(self._preflight_vary)
        self._preflight = tuple(preflight)
        # Copied into a new list per response: outer layers may append to it.
        self._refused = (self._preflight_vary, (b"content-length", b"0"))
        self._credentials_label = conf.label("allow_credentials")
        self._origins_label = origins_label

    # -- build-time helpers -------------------------------------------------------------

    @staticmethod
    def _compile(value: Any, label: str) -> re.Pattern[str]:
        if isinstance(value, re.Pattern):
            if not isinstance(value.pattern, str):
                raise StackConfigurationError(
                    f"{label} = {value!r} is a bytes pattern.",
                    hint="Use a str pattern.",
                    id="middleware_stack.E103",
                )
            return value
        if not isinstance(value, str):
            raise StackConfigurationError(
                f"{label} = {value!r} is not a regular expression string.",
                hint="Use a str such as r'^/api/'.",
                id="middleware_stack.E103",
            )
        try:
            return re.compile(value)
        except re.error as exc:
            raise StackConfigurationError(
                f"{label} = {value!r} is not a valid regular expression: {exc}.",
                hint="Fix the pattern; test it with re.compile().",
                id="middleware_stack.E103",
            ) from exc

    @staticmethod
    def _tokens(values: list[str], label: str) -> list[str]:
        out: list[str] = []
        for v in values:
            if v != "*" and not _TOKEN.fullmatch(v):
                raise StackConfigurationError(
                    f"{label} contains {v!r}, which is not an HTTP header name.",
                    hint="Header names are tokens such as 'X-Request-Id', without spaces, "
                    "colons or commas.",
                    id="middleware_stack.E105",
                )
            low = v.lower()
            if low not in out:
                out.append(low)
        return out

    # -- per request ----------------------------------------------------------------------

    def _match_slow(self, origin: bytes) -> bytes | None:
        """``*``, ``https://*.example.com`` and regex matching; the origin must be well formed."""
        m = _valid_origin(origin)
        if m is None:
            return None
        if self._star:
            return b"*"
        if self._wild:
            host = m.group(2)
            port = m.group(3) or b""
            for prefix, suffix, want_port in self._wild:
                if (
                    origin.startswith(prefix)
                    and host.endswith(suffix)
                    and len(host) > len(suffix)
                    and port == want_port
                    and not host.startswith(b".")
                    and b".." not in host
                ):
                    return origin
        if self._regexes:
            text = origin.decode("ascii")
            for regex in self._regexes:
                if regex.fullmatch(text):
                    return origin
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"origin":
                # A second Origin line is never a browser: treat as malformed.
                origin = value if origin is None else _DUPLICATE
        if self._paths is not None and self._paths.match(path_info(scope)) is None:
            await self.app(scope, receive, send)
            return
        if origin is None:
            # Not a CORS request: no CORS header is added or removed. But the answer would
            # differ for a request with an Origin, so a shared cache must key on it.
            async def vary_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message = {**message}
                    message["headers"] = _patch_headers(
                        message.get("headers") or (), None, (), False
                    )
                await send(message)

            await self.app(scope, receive, vary_send)
            return
        if origin in self._exact:
            acao: bytes | None = b"*" if self._star else origin
        elif self._slow:
            acao = self._match_slow(origin)
        else:
            acao = None
        if scope["method"] == "OPTIONS":
            request_method = None
            for name, value in scope["headers"]:
                if name == b"access-control-request-method":
                    request_method = value if request_method is None else b","
            if request_method:
                await self._preflight_response(scope, send, origin, acao, request_method)
                return
        tail = self._tail

        async def cors_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                # A copy: an app may reuse one message dict for every response, and this
                # request's origin must not leak into the next one.
                message = {**message}
                message["headers"] = _patch_headers(message.get("headers") or (), acao, tail)
            await send(message)

        await self.app(scope, receive, cors_send)

    async def _preflight_response(
        self, scope: Scope, send: Send, origin: bytes, acao: bytes | None, method: bytes
    ) -> None:
        """Answer a preflight (the app is never called): 204 with the policy, or 403."""
        reason: str | None = None
        requested: list[bytes] | None = None
        private_network = False
        if acao is None:
            reason = (
                "the request has several Origin header lines"
                if origin is _DUPLICATE
                else f"origin {escape(origin)} is not allowed"
            )
        elif method not in self._methods and not (self._any_method and _TOKEN_B.fullmatch(method)):
            reason = f"method {escape(method)} is not allowed"
        else:
            lines: list[bytes] = []
            for name, value in scope["headers"]:
                if name == b"access-control-request-headers":
                    lines.append(value)
                elif name == b"access-control-request-private-network":
                    private_network = value == b"true"
            if lines:
                requested, reason = self._check_request_headers(
                    lines[0] if len(lines) == 1 else b",".join(lines)
                )
        if reason is not None:
            await self._refuse(scope, send, origin, reason)
            return
        assert acao is not None
        headers = [(_ACAO, acao), *self._preflight]
        if self._any_method:
            headers.append((b"access-control-allow-methods", method))
        if self._any_header and requested:
            headers.append((b"access-control-allow-headers", b", ".join(requested)))
        if private_network and self.allow_private_network:
            headers.append(_ACAPN)
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    def _check_request_headers(self, value: bytes) -> tuple[list[bytes], str | None]:
        """Parse Access-Control-Request-Headers: case-insensitive, tolerant of spaces, empty
        elements and several lines; linear time and at most MAX_REQUEST_HEADERS names."""
        allowed = self._headers
        if value in allowed:  # the common case: one lowercase name
            return [value], None
        names: list[bytes] = []
        for m in _ELEMENT_B.finditer(value):
            name = m.group().lower()
            if len(names) >= MAX_REQUEST_HEADERS:
                return names, f"more than {MAX_REQUEST_HEADERS} request headers were requested"
            if name not in allowed and not (
                self._any_header and name != b"authorization" and _TOKEN_B.fullmatch(name)
            ):
                if not _TOKEN_B.fullmatch(name):
                    return names, f"request header name {escape(name)} is malformed"
                hint = (
                    " ('*' does not cover Authorization: list it explicitly)"
                    if name == b"authorization"
                    else ""
                )
                return names, f"request header {escape(name)} is not allowed{hint}"
            names.append(name)
        return names, None

    async def _refuse(self, scope: Scope, send: Send, origin: bytes, reason: str) -> None:
        body = b""
        headers = list(self._refused)
        if self.debug:
            suggestion = self._suggest(origin) if reason.startswith("origin") else None
            if suggestion:
                reason += f" (did you mean {suggestion!r}?)"
            text = f"CORS preflight refused: {reason}."
            logger.warning("%s path=%s", text, escape(scope.get("path", "")))
            body = text.encode("ascii") + b"\n"
            headers = [
                self._preflight_vary,
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"x-content-type-options", b"nosniff"),
                (b"content-length", str(len(body)).encode()),
            ]
        await send({"type": "http.response.start", "status": 403, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _suggest(self, origin: bytes) -> str | None:
        candidates = [*self._exact_list, *self._patterns]
        text = origin.decode("latin-1").strip().lower().rstrip("/")
        if text in candidates and text != origin.decode("latin-1"):
            return text
        close = difflib.get_close_matches(text, candidates, n=1, cutoff=0.6)
        return close[0] if close else None

    # -- Django system checks -------------------------------------------------------------

    def stack_checks(self, deploy: bool) -> list[Any]:
        """Under ``check --deploy``: credentialed origins that Django's CSRF check refuses.

        A credentialed cross-origin POST carries the session cookie; Django's
        ``CsrfViewMiddleware`` then compares ``Origin`` with ``CSRF_TRUSTED_ORIGINS`` and
        answers 403, even though CORS allowed it.
        """
        if not deploy or not self.allow_credentials:
            return []
        from django.conf import settings
        from django.core import checks

        trusted = list(getattr(settings, "CSRF_TRUSTED_ORIGINS", []))
        exact = set(trusted)
        wild = [t.split("*", 1) for t in trusted if "*" in t]
        missing = []
        for origin in [*self._exact_list, *self._patterns]:
            if origin in ("null", "file://") or origin in exact:
                continue
            if "*" not in origin and any(
                origin.startswith(a) and origin.endswith(b) and len(origin) > len(a + b)
                for a, b in wild
            ):
                continue
            missing.append(origin)
        if not missing:
            return []
        return [
            checks.Warning(
                f"Credentialed CORS origins {', '.join(map(repr, missing))} are not in "
                "CSRF_TRUSTED_ORIGINS: their unsafe requests (POST, PUT, DELETE) with the "
                "session cookie are refused by Django's CSRF check.",
                hint="Add them to CSRF_TRUSTED_ORIGINS (same spelling), or, if they never "
                "send unsafe requests, ignore this warning.",
                obj="CSRF_TRUSTED_ORIGINS",
                id="middleware_stack.W107",
            )
        ]
