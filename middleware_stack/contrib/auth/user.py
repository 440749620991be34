"""``ScopeUser``: the lazy Django user behind ``scope["user"]``, and how it is looked up.

The ASGI layer only decides *who* the client is; it never touches the database on the
event loop. Sync code (a sync view, after ``ScopeUserMiddleware``) resolves the user in
its worker thread, async code awaits ``scope["user"].aresolve()`` (or
``request.auser()``), which runs the lookup through ``sync_to_async(thread_sensitive=True)``,
i.e. in Django's thread for the request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.utils.asyncio import async_unsafe
from django.utils.functional import LazyObject, empty
from django.utils.module_loading import import_string

from middleware_stack.contrib.auth.base import AuthInfo, _error

__all__ = ["ScopeUser"]

DEFAULT_USER_BACKEND = "django.contrib.auth.backends.RemoteUserBackend"
_ON_LOOP = (
    "scope['user'] is resolved through the database and cannot be read on the event "
    "loop. In async code use 'await scope[\"user\"].aresolve()' or 'await request.auser()'."
)

Resolver = Callable[[str], Any]


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
