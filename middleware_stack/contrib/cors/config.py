"""The CORS layer's options: read (given, or from django-cors-headers' ``CORS_*``
settings), validated and precomputed into header bytes before the first request.

:class:`CORSPolicy` is the build-time half of ``CORSMiddleware``; the per-request
half lives in ``middleware``.
"""

from __future__ import annotations

import enum
import re
import warnings
from collections.abc import Iterable
from typing import Any, Final, NoReturn

from middleware_stack import StackConfigurationError, StackWarning
from middleware_stack.contrib.cors.parsing import (
    _ACAC,
    _NORMALISED_METHODS,
    _PREFLIGHT_VARY,
    _TOKEN,
    MAX_AGE_CAP,
    SAFELISTED_METHODS,
    _normalise_origin,
    _unescaped_dots,
)


class _FromSettings(enum.Enum):
    """Default of every option: "not given". With no policy option given at all, the
    layer reads the ``CORS_*`` settings; with any given, unset options take strict
    defaults. A sentinel (not ``**kwargs``) keeps the builder's signature check able to
    list the accepted option names."""

    FROM_SETTINGS = "FROM_SETTINGS"

    def __repr__(self) -> str:
        return "FROM_SETTINGS"


FROM_SETTINGS: Final = _FromSettings.FROM_SETTINGS

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


def _warn(msg: str, hint: str, code: str) -> None:
    warnings.warn(StackWarning(msg, hint=hint, id=f"middleware_stack.{code}"), stacklevel=4)


class CORSPolicy:
    """The parsed policy; ``CORSMiddleware`` calls :meth:`_configure` from ``__init__``."""

    app: Any

    def _configure(self, conf: _Config) -> None:
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
