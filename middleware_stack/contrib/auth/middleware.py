"""``AuthPassthroughMiddleware``: an identity from the edge into ``scope["auth"]``/``["user"]``.

The ASGI layer only decides *who* the client is; it never touches the database on the
event loop. ``scope["user"]`` is a lazy Django user: sync code (a sync view, after
:class:`ScopeUserMiddleware`) resolves it in its worker thread, async code awaits
``scope["user"].aresolve()`` (or ``request.auser()``), which runs the lookup through
``sync_to_async(thread_sensitive=True)``, i.e. in Django's thread for the request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from middleware_stack.contrib.auth.base import AuthInfo, InvalidCredentials, _error
from middleware_stack.contrib.auth.layer_checks import layer_checks
from middleware_stack.contrib.auth.options import (
    _build_backend,
    _response_headers,
    _valid_header_value,
)
from middleware_stack.contrib.auth.user import (
    DEFAULT_USER_BACKEND,
    ScopeUser,
    _new,
    _set_auth,
    _user_resolver,
)
from middleware_stack.scope import path_info
from middleware_stack.types import ASGIApp, Receive, Scope, Send

__all__ = ["AuthPassthroughMiddleware", "ScopeUser"]

CONSTRAINT_CORS = "middleware_stack.contrib.cors.CORSMiddleware"
_SCOPES = frozenset({"http", "websocket"})


class AuthPassthroughMiddleware:
    """Who is the client? Ask ``backends`` in order; the first identity wins.

    Sets ``scope["auth"]`` (:class:`AuthInfo`) and a lazy ``scope["user"]``
    (:class:`ScopeUser`) on a *copy* of the scope for ``http`` and ``websocket``.
    Without credentials the request passes as anonymous, unless the path Django will
    resolve (:func:`middleware_stack.scope.path_info`: ``FORCE_SCRIPT_NAME`` or
    ``root_path`` removed, as Django removes it) matches ``required_paths`` (answered
    401 with ``WWW-Authenticate``, or a websocket closed with 4401). Credentials that
    are presented and wrong are refused the same way on every path: a bad token never
    degrades to anonymous.
    """

    # Auth must sit inside CORS, so that preflights and 401s carry CORS headers.
    stack_constraints = {"inside": [CONSTRAINT_CORS]}

    def __init__(
        self,
        app: ASGIApp,
        backends: Iterable[Any] = ("middleware_stack.contrib.auth.TrustedHeaderBackend",),
        *,
        required_paths: Iterable[str] = (),
        create_unknown_user: bool | None = None,
        user_backend: Any = DEFAULT_USER_BACKEND,
        www_authenticate: str | None = None,
    ) -> None:
        self.app = app
        if isinstance(backends, str | bytes) or not isinstance(backends, Iterable):
            raise _error(
                f"backends={backends!r} is not a list.",
                "Write backends=['middleware_stack.contrib.auth.TrustedHeaderBackend', ...].",
                "E301",
            )
        built = tuple(_build_backend(entry, i) for i, entry in enumerate(backends))
        if not built:
            raise _error(
                "backends is empty, so no request could ever be identified.",
                "List at least one backend, e.g. "
                "'middleware_stack.contrib.auth.TrustedHeaderBackend'.",
                "E301",
            )
        self.backends = built
        self._header_backends = tuple(b for b in built if hasattr(b, "inspect_headers"))
        # Positions: an int indexes the precomputed header results, else the backend.
        plan: list[Any] = []
        for b in built:
            plan.append(self._header_backends.index(b) if hasattr(b, "inspect_headers") else b)
        self._plan = tuple(plan)
        self._single = (
            built[0].inspect_headers
            if len(built) == 1 and hasattr(built[0], "inspect_headers")
            else None
        )

        if isinstance(required_paths, str) or not isinstance(required_paths, Iterable):
            raise _error(
                f"required_paths={required_paths!r} is not a list of regexes.",
                "Write required_paths=[r'^/api/', r'^/admin/'].",
                "E305",
            )
        patterns = list(required_paths)
        for p in patterns:
            try:
                re.compile(p)
            except (re.error, TypeError) as exc:
                raise _error(
                    f"required_paths contains {p!r}, which is not a valid regex: {exc}",
                    "Each entry is matched from the start of the path, e.g. r'^/api/'.",
                    "E305",
                ) from exc
        self.required_paths = tuple(patterns)
        self._required: Callable[[str], Any] | None = (
            re.compile("|".join(f"(?:{p})" for p in patterns)).match if patterns else None
        )

        if create_unknown_user is not None and not isinstance(create_unknown_user, bool):
            raise _error(
                f"create_unknown_user={create_unknown_user!r} must be True, False or None.",
                "None keeps the user_backend's own setting (True for RemoteUserBackend).",
                "E307",
            )
        self.create_unknown_user = create_unknown_user
        self._user_cls = ScopeUser.for_resolver(_user_resolver(user_backend, create_unknown_user))

        if www_authenticate is None:
            challenges = [c for b in built if (c := getattr(b, "challenge", None))]
            www_authenticate = ", ".join(challenges) or 'Proxy realm="restricted"'
        if not _valid_header_value(www_authenticate):
            raise _error(
                f"The challenge {www_authenticate!r} (www_authenticate, or the backends' "
                "challenge) cannot be sent as a WWW-Authenticate header value.",
                "Give a latin-1 string without control characters, e.g. "
                "'Bearer realm=\"api\"', or None for the backends' own challenge.",
                "E307",
            )
        self.www_authenticate = www_authenticate
        # Only the header pairs are precomputed: every response gets its own message dict
        # and headers list, since outer layers may replace or append to them.
        self._challenge_headers = _response_headers(www_authenticate)

    def stack_checks(self, deploy: bool) -> list[Any]:
        return layer_checks(self, deploy)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in _SCOPES:
            await self.app(scope, receive, send)
            return
        inspect = self._single
        if inspect is None:
            await self._general(scope, receive, send)
            return
        # One header backend (the common case): no awaits, one pass over the headers.
        info, cleaned = inspect(scope, scope["headers"])
        if info is not None:
            user = _new(self._user_cls)
            _set_auth(user, info)
            new = dict(scope)
            new["auth"] = info
            new["user"] = user
            if cleaned is not None:
                new["headers"] = cleaned
            await self.app(new, receive, send)
            return
        if cleaned is not None:
            scope = {**scope, "headers": cleaned}
        if self._required is not None and self._required(path_info(scope)):
            await self._deny(scope, receive, send, None)
            return
        await self.app(scope, receive, send)

    async def _general(self, scope: Scope, receive: Receive, send: Send) -> None:
        new = dict(scope)
        headers = scope["headers"]
        results: list[AuthInfo | None] = []
        for backend in self._header_backends:
            found, out = backend.inspect_headers(new, headers)
            if out is not None:
                new["headers"] = headers = out
            results.append(found)
        info: AuthInfo | None = None
        try:
            for step in self._plan:
                info = results[step] if isinstance(step, int) else await step.authenticate(new)
                if info is not None:
                    break
        except InvalidCredentials as exc:
            await self._deny(new, receive, send, exc)
            return
        if info is None:
            if self._required is not None and self._required(path_info(new)):
                await self._deny(new, receive, send, None)
                return
        else:
            new["auth"] = info
            new["user"] = self._user_cls(info)
        await self.app(new, receive, send)

    async def _deny(
        self, scope: Scope, receive: Receive, send: Send, exc: InvalidCredentials | None
    ) -> None:
        if scope["type"] == "http":
            if exc is None:
                status, headers = 401, self._challenge_headers
                body = b"Authentication required.\n"
            else:
                status, headers = exc.status, _response_headers(exc.www_authenticate)
                body = b"Invalid credentials.\n" if exc.status == 401 else b"Bad request.\n"
            await send({"type": "http.response.start", "status": status, "headers": list(headers)})
            await send({"type": "http.response.body", "body": body})
            return
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        # Accept, then close with 4401: a close before accept becomes a bare 403 in
        # every server, and the client would never see why.
        accept: dict[str, Any] = {"type": "websocket.accept"}
        offered = scope.get("subprotocols") or ()
        if offered:
            accept["subprotocol"] = offered[0]
        await send(accept)
        reason = "invalid credentials" if exc is not None else "authentication required"
        await send({"type": "websocket.close", "code": 4401, "reason": reason})
