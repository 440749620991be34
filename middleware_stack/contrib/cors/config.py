"""The CORS layer's options: read (given, or from django-cors-headers' ``CORS_*``
settings), validated and precomputed into header bytes before the first request.

:class:`CORSPolicy` is the build-time half of ``CORSMiddleware``; the per-request
half lives in ``middleware``.
"""

from __future__ import annotations

import re
import warnings
from typing import Any, NoReturn

from middleware_stack import StackConfigurationError, StackWarning
from middleware_stack.contrib.cors.breadth import first_hostile_match
from middleware_stack.contrib.cors.conf import (
    CORSHEADERS_DEFAULT_HEADERS,
    CORSHEADERS_DEFAULT_METHODS,
    FROM_SETTINGS,
    REMOVED_SETTINGS,
    _Config,
    _FromSettings,
)
from middleware_stack.contrib.cors.parsing import (
    _ACAC,
    _NORMALISED_METHODS,
    _PREFLIGHT_VARY,
    _TOKEN,
    MAX_AGE_CAP,
    SAFELISTED_METHODS,
    _normalise_origin,
    _unescaped_dots,
    _valid_origin,
    wildcard_admits,
)

__all__ = [
    "CORSHEADERS_DEFAULT_HEADERS",
    "CORSHEADERS_DEFAULT_METHODS",
    "FROM_SETTINGS",
    "REMOVED_SETTINGS",
    "CORSPolicy",
    "_Config",
    "_FromSettings",
]


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
                "origin instead (what django-cors-headers does with CORS_ALLOW_ALL_ORIGINS and "
                "CORS_ALLOW_CREDENTIALS) would let every website act as the signed-in user.",
                "Migrating from django-cors-headers: set CORS_ALLOW_ALL_ORIGINS = False and "
                "list the sites that may send credentials in CORS_ALLOWED_ORIGINS (or "
                "'https://*.your-domain.example' patterns), or turn credentials off to keep "
                "'*'.",
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
        if credentials:
            self._refuse_broad_patterns(conf, wild, regexes)
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

    def _refuse_broad_patterns(
        self,
        conf: _Config,
        wild: list[tuple[bytes, bytes, bytes]],
        regexes: list[re.Pattern[str]],
    ) -> None:
        """E101 for a credentialed pattern that admits sites anyone can register.

        Judged by behaviour (:mod:`.breadth`): each pattern is tried on hostile origins.
        """
        for text, (prefix, suffix, port) in zip(self._patterns, wild, strict=True):

            def admits(origin: str, w: tuple[bytes, bytes, bytes] = (prefix, suffix, port)) -> bool:
                raw = origin.encode("ascii")
                parts = _valid_origin(raw)
                return parts is not None and wildcard_admits(raw, parts, w)

            hit = first_hostile_match(admits, port.decode() and ":" + port.decode())
            if hit is not None:
                self._broad(conf, conf.label("allow_origins"), text, hit)
        for regex in regexes:
            hit = first_hostile_match(regex.fullmatch)
            if hit is not None:
                self._broad(conf, conf.label("allow_origin_regex"), regex.pattern, hit)

    @staticmethod
    def _broad(conf: _Config, label: str, pattern: str, hit: str) -> NoReturn:
        conf.fail(
            f"{label} pattern {pattern!r} admits {hit!r} together with "
            f"{conf.label('allow_credentials')} = True: it covers a public suffix's whole "
            "namespace or arbitrary hosts, so any site registered there could act as the "
            "signed-in user.",
            "Anchor the pattern to a domain you own, e.g. 'https://*.example.com' or "
            "r'^https://([a-z0-9-]+\\.)?example\\.com$', or turn credentials off.",
            "E101",
        )

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
