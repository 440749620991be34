"""``CORSMiddleware``: the per-request half of the CORS layer.

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
import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

from middleware_stack.contrib.cors.config import FROM_SETTINGS, CORSPolicy, _Config, _FromSettings
from middleware_stack.contrib.cors.parsing import (
    _ACAO,
    _ACAPN,
    _DUPLICATE,
    _ELEMENT_B,
    _TOKEN_B,
    _VARY_ORIGIN,
    _WS,
    MAX_REQUEST_HEADERS,
    _valid_origin,
    escape,
    wildcard_admits,
)
from middleware_stack.scope import path_info
from middleware_stack.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CORSMiddleware"]

logger = logging.getLogger("middleware_stack.cors")


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


class CORSMiddleware(CORSPolicy):
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
        self._configure(conf)

    def _match_slow(self, origin: bytes) -> bytes | None:
        """``*``, ``https://*.example.com`` and regex matching; the origin must be well formed."""
        m = _valid_origin(origin)
        if m is None:
            return None
        if self._star:
            return b"*"
        for wild in self._wild:
            if wildcard_admits(origin, m, wild):
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
