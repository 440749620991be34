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

from asgiref.sync import sync_to_async
from django.utils.asyncio import async_unsafe
from django.utils.functional import LazyObject, empty
from django.utils.module_loading import import_string

from middleware_stack import StackConfigurationError
from middleware_stack.contrib.auth.backends import AuthInfo, InvalidCredentials
from middleware_stack.scope import path_info
from middleware_stack.types import ASGIApp, Receive, Scope, Send

__all__ = ["AuthPassthroughMiddleware", "ScopeUser"]

CONSTRAINT_CORS = "middleware_stack.contrib.cors.CORSMiddleware"
DEFAULT_USER_BACKEND = "django.contrib.auth.backends.RemoteUserBackend"
_ON_LOOP = (
    "scope['user'] is resolved through the database and cannot be read on the event "
    "loop. In async code use 'await scope[\"user\"].aresolve()' or 'await request.auser()'."
)

Resolver = Callable[[str], Any]
_SCOPES = frozenset({"http", "websocket"})


class ScopeUser(LazyObject):  # type: ignore[type-arg]  # not subscriptable at runtime
    """``scope["user"]``: the Django user for ``scope["auth"].identity``, loaded on first use.

    Reading an attribute resolves it synchronously, which Django refuses on the event
    loop (``SynchronousOnlyOperation``); ``await user.aresolve()`` is the async way.
    Either way the lookup runs once per request and is shared by both.
    """

    # Created on every identified request, so creation skips LazyObject's __init__ and
    # __setattr__: "_wrapped" starts as this class default, "_auth" is a slot, and each
    # middleware gets a subclass whose "_resolve" is its user lookup.
    __slots__ = ("_auth",)
    _wrapped: Any = empty

    @staticmethod
    def _resolve(identity: str) -> Any:
        raise TypeError(
            "ScopeUser needs a resolver: ScopeUser(auth, resolve) or "
            "ScopeUser.for_resolver(resolve)(auth)."
        )

    def __init__(self, auth: AuthInfo, resolve: Resolver | None = None) -> None:
        _set_auth(self, auth)
        if resolve is not None:
            self.__dict__["_resolve"] = resolve

    @classmethod
    def for_resolver(cls, resolve: Resolver) -> type[ScopeUser]:
        """A subclass whose instances resolve through ``resolve``."""
        return type(cls.__name__, (cls,), {"__slots__": (), "_resolve": staticmethod(resolve)})

    @async_unsafe(_ON_LOOP)
    def _setup(self) -> None:
        self._wrapped = self._load()

    def _load(self) -> Any:
        user = self._resolve(self._auth.identity)
        if user is None:
            from django.contrib.auth.models import AnonymousUser

            user = AnonymousUser()
        return user

    async def aresolve(self) -> Any:
        """The user object (``AnonymousUser`` if Django refuses the identity)."""
        if self._wrapped is empty:
            user = await sync_to_async(self._load, thread_sensitive=True)()
            if self._wrapped is empty:
                self._wrapped = user
        return self._wrapped

    def __copy__(self) -> ScopeUser:
        copy = _new(type(self))
        _set_auth(copy, self._auth)
        if "_resolve" in self.__dict__:
            copy.__dict__["_resolve"] = self.__dict__["_resolve"]
        if self._wrapped is not empty:
            copy._wrapped = self._wrapped
        return copy

    def __deepcopy__(self, memo: dict[int, Any]) -> ScopeUser:
        return self.__copy__()

    def __repr__(self) -> str:
        if self._wrapped is empty:
            return f"<ScopeUser {self._auth.identity!r} (not loaded)>"
        return f"<ScopeUser {self._wrapped!r}>"


_new = object.__new__
_set_auth = ScopeUser._auth.__set__  # type: ignore[attr-defined]


def _error(msg: str, hint: str, id: str) -> StackConfigurationError:
    return StackConfigurationError(msg, hint=hint, id=f"middleware_stack.{id}")


def _build_backend(entry: Any, index: int) -> Any:
    where = f"backends[{index}]"
    options: dict[str, Any] = {}
    target = entry
    if isinstance(entry, tuple | list):
        if len(entry) != 2 or not isinstance(entry[1], dict):
            raise _error(
                f"{where} = {entry!r} is not a (path, options) pair.",
                "Write ('middleware_stack.contrib.auth.BearerTokenBackend', "
                "{'verify': 'myproject.auth.verify'}).",
                "E301",
            )
        target, options = entry
    if isinstance(target, str):
        try:
            target = import_string(target)
        except ImportError as exc:
            raise _error(
                f"{where} = {entry!r} cannot be imported: {exc}",
                "Check the dotted path, e.g. 'middleware_stack.contrib.auth.TrustedHeaderBackend'.",
                "E301",
            ) from exc
    if isinstance(target, type):
        try:
            backend = target(**options)
        except StackConfigurationError:
            raise
        except TypeError as exc:
            raise _error(
                f"{where}: {target.__name__}(**{options!r}) failed: {exc}",
                "Check the backend's options against its documentation.",
                "E301",
            ) from exc
    elif options:
        raise _error(
            f"{where} gives options for {target!r}, which is already an instance.",
            "Give options only with a class or its dotted path.",
            "E301",
        )
    else:
        backend = target
    if not (hasattr(backend, "inspect_headers") or hasattr(backend, "authenticate")):
        raise _error(
            f"{where} = {backend!r} is not an auth backend: it has neither "
            "inspect_headers(scope, headers) nor authenticate(scope).",
            "Use TrustedHeaderBackend, BearerTokenBackend, or see the auth docs for the "
            "backend protocol.",
            "E301",
        )
    return backend


def _valid_header_value(value: Any) -> bool:
    """A str that encodes to latin-1 without control characters (no CR/LF injection)."""
    if not isinstance(value, str):
        return False
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return not any((b < 0x20 and b != 0x09) or b == 0x7F for b in raw)


def _response_headers(challenge: str) -> tuple[tuple[bytes, bytes], ...]:
    return (
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"www-authenticate", challenge.encode("latin-1")),
        (b"cache-control", b"no-store"),
    )


def _user_resolver(user_backend: Any, create_unknown_user: bool | None) -> Resolver:
    path = user_backend if isinstance(user_backend, str) else None
    try:
        cls = import_string(user_backend) if isinstance(user_backend, str) else user_backend
        backend = cls()
    except Exception as exc:
        raise _error(
            f"user_backend={user_backend!r} cannot be used: {type(exc).__name__}: {exc}",
            "Give the dotted path of a Django auth backend whose authenticate(request, "
            "remote_user=...) returns a user, e.g. "
            "'django.contrib.auth.backends.RemoteUserBackend'.",
            "E306",
        ) from exc
    if not callable(getattr(backend, "authenticate", None)):
        raise _error(
            f"user_backend={user_backend!r} has no authenticate() method.",
            "Use django.contrib.auth.backends.RemoteUserBackend or a subclass.",
            "E306",
        )
    if create_unknown_user is not None:
        backend.create_unknown_user = create_unknown_user
    backend_path = path or f"{type(backend).__module__}.{type(backend).__qualname__}"

    def resolve(identity: str) -> Any:
        user = backend.authenticate(None, remote_user=identity)
        if user is not None:
            user.backend = backend_path
        return user

    return resolve


class AuthPassthroughMiddleware:
    """Who is the client? Ask ``backends`` in order; the first identity wins.

    Sets ``scope["auth"]`` (:class:`AuthInfo`) and a lazy ``scope["user"]``
    (:class:`ScopeUser`) on a *copy* of the scope for ``http`` and ``websocket``.
    Without credentials the request passes as anonymous, unless its path (below
    ``root_path``, as Django's URLconf sees it) matches ``required_paths`` (answered
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
        from middleware_stack.contrib.auth.checks import layer_checks

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
