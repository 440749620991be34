"""Auth passthrough end to end: real Django, a real database, request.user in views.

Django's async-unsafe guard stays active (``DJANGO_ALLOW_ASYNC_UNSAFE`` is never set), so
any ORM query on the event loop raises ``SynchronousOnlyOperation`` and fails a test.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import iscoroutinefunction, sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import RemoteUserBackend
from django.core.asgi import get_asgi_application
from django.core.exceptions import SynchronousOnlyOperation
from django.test import override_settings

from middleware_stack import Stack, build_stack
from middleware_stack.contrib.auth import AuthInfo, ScopeUser, ScopeUserMiddleware
from tests.asgi import call, http_scope

pytestmark = pytest.mark.django_db(transaction=True)

LAYER = "middleware_stack.contrib.auth.AuthPassthroughMiddleware"
TRUSTED = "middleware_stack.contrib.auth.TrustedHeaderBackend"
BEARER = "middleware_stack.contrib.auth.BearerTokenBackend"
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "middleware_stack.contrib.auth.ScopeUserMiddleware",
]
PROXY = ("10.0.0.2", 40000)
OUTSIDER = ("198.51.100.7", 40000)
User = get_user_model()


@pytest.fixture(autouse=True)
def auth_site() -> Iterator[None]:
    assert not os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE"), "the async-unsafe guard must be on"
    with override_settings(ROOT_URLCONF="tests.auth_urls", MIDDLEWARE=MIDDLEWARE):
        yield


def verify(token: str) -> Any:
    # Sync and run through sync_to_async: it may use the ORM.
    if token == "alice-token" and User.objects.filter(username="alice").exists():
        return AuthInfo("alice", "x", {"scope": "read"})
    return "bob" if token == "bob-token" else None


async def averify(token: str) -> str | None:
    return {"alice-token": "alice", "bob-token": "bob"}.get(token)


def stack(**options: Any) -> Stack:
    options.setdefault("backends", [(TRUSTED, {"trusted_proxies": ["10.0.0.0/24", "fd00::/8"]})])
    return build_stack(get_asgi_application(), [(LAYER, options)], checks="off")


async def get_json(app: Any, path: str, headers: Any = (), **extra: Any) -> dict[str, Any]:
    r = await call(app, "GET", path, headers, **extra)
    assert r.status == 200, r.body
    assert r.header("set-cookie") is None  # the session is never written
    data: dict[str, Any] = json.loads(r.body)
    return data


@sync_to_async
def usernames() -> list[str]:
    return sorted(User.objects.values_list("username", flat=True))


@sync_to_async
def make_user(name: str, **fields: Any) -> Any:
    return User.objects.create(username=name, **fields)


@pytest.mark.parametrize("view", ["/sync/", "/async/"])
@pytest.mark.parametrize("client", [PROXY, ("fd00::1", 1), ("::ffff:10.0.0.9", 1)])
async def test_trusted_proxy_identity_is_request_user(view: str, client: Any) -> None:
    data = await get_json(stack(), view, [("x-forwarded-user", "alice")], client=client)
    assert data["username"] == "alice" and data["authenticated"]
    assert data["identity"] == "alice" and data["backend"] == "trusted-header"
    assert await usernames() == ["alice"]  # created on first sight


@pytest.mark.parametrize("view", ["/sync/", "/async/"])
async def test_untrusted_client_header_never_reaches_django(view: str) -> None:
    headers = [("x-forwarded-user", "admin"), ("x_forwarded_user", "admin"), ("accept", "*/*")]
    data = await get_json(stack(), view, headers, client=OUTSIDER)
    assert data["forwarded_user_meta"] is None
    assert data["meta_keys"] == ["HTTP_ACCEPT"]
    assert data["username"] is None and data["identity"] is None
    assert await usernames() == []


async def test_trusted_proxy_header_is_left_in_meta_for_django_code() -> None:
    data = await get_json(stack(), "/sync/", [("x-forwarded-user", "alice")], client=PROXY)
    assert data["forwarded_user_meta"] == "alice"


@pytest.mark.parametrize(
    "headers",
    [
        [("x-forwarded-user", "alice"), ("x-forwarded-user", "bob")],
        [("x-forwarded-user", "alice, admin")],  # what Django's META makes of two copies
        [("x-forwarded-user", "alice,admin")],
        [("x-forwarded-user", "")],
    ],
)
async def test_ambiguous_or_empty_header_from_proxy_is_anonymous(headers: Any) -> None:
    data = await get_json(stack(), "/async/", headers, client=PROXY)
    assert data["username"] is None and data["forwarded_user_meta"] is None
    assert await usernames() == []


@pytest.mark.parametrize("spelling", ["x_forwarded_user", "X_Forwarded_User", "x-forwarded_user"])
async def test_underscore_spelling_from_a_trusted_proxy_is_no_identity(spelling: str) -> None:
    # The proxy replaces X-Forwarded-User but passes the client's X_Forwarded_User on:
    # alone, it must not log anyone in (issue 15, item 1), and Django never sees it.
    data = await get_json(stack(), "/async/", [(spelling, "admin")], client=PROXY)
    assert data["username"] is None and data["identity"] is None
    assert data["meta_keys"] == []
    assert await usernames() == []


async def test_exact_header_wins_and_the_underscore_copy_beside_it_is_removed() -> None:
    headers = [("x-forwarded-user", "alice"), ("x_forwarded_user", "admin")]
    data = await get_json(stack(), "/sync/", headers, client=PROXY)
    assert (data["username"], data["identity"]) == ("alice", "alice")
    assert data["forwarded_user_meta"] == "alice"
    assert data["meta_keys"] == ["HTTP_X_FORWARDED_USER"]


@pytest.mark.parametrize("view", ["/sync/", "/async/"])
@pytest.mark.parametrize("check", [verify, averify])
async def test_bearer_token_identity_is_request_user(view: str, check: Any) -> None:
    await make_user("alice")
    app = stack(backends=[(BEARER, {"verify": check})])
    data = await get_json(app, view, [("authorization", "Bearer alice-token")])
    assert data["username"] == "alice" and data["backend"] == "bearer"
    assert data["claims"] == ({"scope": "read"} if check is verify else {})
    r = await call(app, "GET", view, [("authorization", "Bearer stolen")])
    assert r.status == 401
    assert r.header("www-authenticate") == 'Bearer error="invalid_token"'
    anonymous = await get_json(app, view)
    assert anonymous["username"] is None and anonymous["identity"] is None


async def test_unknown_users_are_refused_when_create_unknown_user_is_false() -> None:
    app = stack(create_unknown_user=False)
    for view in ("/sync/", "/async/"):
        data = await get_json(app, view, [("x-forwarded-user", "mallory")], client=PROXY)
        assert data["identity"] == "mallory"  # the proxy said so ...
        assert data["username"] is None and not data["authenticated"]  # ... Django did not
    assert await usernames() == []
    await make_user("carol")
    data = await get_json(app, "/async/", [("x-forwarded-user", "carol")], client=PROXY)
    assert data["username"] == "carol"


async def test_inactive_user_is_anonymous() -> None:
    await make_user("dave", is_active=False)
    data = await get_json(stack(), "/sync/", [("x-forwarded-user", "dave")], client=PROXY)
    assert data["username"] is None


async def test_required_paths_answer_401_before_django() -> None:
    app = stack(required_paths=[r"/api/"])
    r = await call(app, "GET", "/api/sync/", client=OUTSIDER, headers=[("x-forwarded-user", "a")])
    assert r.status == 401 and r.header("www-authenticate")
    ok = await get_json(app, "/api/async/", [("x-forwarded-user", "alice")], client=PROXY)
    assert ok["username"] == "alice"
    assert (await get_json(app, "/sync/"))["username"] is None


async def test_scope_user_replaces_the_session_user_without_touching_the_session() -> None:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session

    @sync_to_async
    def login_session(user: Any) -> str:
        s = SessionStore()
        s[SESSION_KEY] = str(user.pk)
        s[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        s[HASH_SESSION_KEY] = user.get_session_auth_hash()
        s.create()
        assert s.session_key is not None
        return s.session_key

    @sync_to_async
    def session_data(key: str) -> dict[str, Any]:
        return dict(SessionStore(key).load())

    alice = await make_user("alice")
    key = await login_session(alice)
    before = await session_data(key)
    cookie = [("cookie", f"sessionid={key}")]
    app = stack()
    # Without an identity from the layer, Django's session authentication is untouched.
    assert (await get_json(app, "/sync/", cookie, client=OUTSIDER))["username"] == "alice"
    for view in ("/sync/", "/async/"):
        data = await get_json(app, view, [*cookie, ("x-forwarded-user", "bob")], client=PROXY)
        assert data["username"] == "bob"
    assert await session_data(key) == before
    assert await sync_to_async(Session.objects.count)() == 1


async def test_scope_user_cannot_be_read_on_the_event_loop_but_can_be_awaited() -> None:
    await make_user("erin")
    app_scopes: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        app_scopes.append(scope)
        user = scope["user"]
        with pytest.raises(SynchronousOnlyOperation, match="aresolve"):
            user.username  # noqa: B018 - the read is the point
        resolved = await user.aresolve()
        assert resolved.username == "erin" and user.username == "erin"  # now cached
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    mw = build_stack(app, [(LAYER, {"backends": [(TRUSTED, {})]})], checks="off")
    r = await call(mw, headers=[("x-forwarded-user", "erin")])
    assert r.status == 204 and isinstance(app_scopes[0]["user"], ScopeUser)


async def test_websocket_app_sees_the_identity_and_the_user() -> None:
    received: list[Any] = []

    async def ws_app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        user = await scope["user"].aresolve()
        received.append((scope["auth"].identity, user.username, scope["query_string"]))
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": f"hello {user.username}"})
        await send({"type": "websocket.close", "code": 1000})

    options = {"backends": [(BEARER, {"verify": verify})], "required_paths": ["/ws/"]}
    app = build_stack(get_asgi_application(), [(LAYER, options)], checks="off", websocket=ws_app)

    async def connect(query: bytes) -> list[dict[str, Any]]:
        scope = http_scope("GET", "/ws/chat", query_string=query)
        scope.update(type="websocket", subprotocols=[])
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        await inbox.put({"type": "websocket.connect"})
        sent: list[dict[str, Any]] = []

        async def send(m: dict[str, Any]) -> None:
            sent.append(m)

        await asyncio.wait_for(app(scope, inbox.get, send), 10)
        return sent

    sent = await connect(b"access_token=bob-token&room=1")
    assert sent[1] == {"type": "websocket.send", "text": "hello bob"}
    assert received == [("bob", "bob", b"room=1")]
    assert await usernames() == ["bob"]
    refused = await connect(b"room=1")
    assert refused[-1]["code"] == 4401 and len(received) == 1


def test_scope_user_middleware_is_sync_and_async_capable() -> None:
    auth = AuthInfo("zed", "test")
    user = ScopeUser(auth, lambda identity: None)

    class Request:
        scope = {"type": "http", "auth": auth, "user": user}

    seen: list[Any] = []
    sync_mw = ScopeUserMiddleware(lambda request: seen.append(request.user) or "response")
    assert not iscoroutinefunction(sync_mw)
    request: Any = Request()
    assert sync_mw(request) == "response" and seen == [user]
    assert request.auser == user.aresolve

    async def get_response(request: Any) -> str:
        return "async response"

    async_mw = ScopeUserMiddleware(get_response)
    assert iscoroutinefunction(async_mw)
    plain: Any = type("Plain", (), {"scope": {"type": "http"}, "user": "session-user"})()
    assert asyncio.run(async_mw(plain)) == "async response"
    assert plain.user == "session-user"  # no scope["auth"]: left alone


class RecordingBackend(RemoteUserBackend):
    """A project's own RemoteUserBackend subclass, as user_backend."""

    calls: list[tuple[str, bool, bool]] = []

    def configure_user(self, request: Any, user: Any, created: bool = True) -> Any:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        self.calls.append((user.username, created, on_loop))
        if created:
            user.email = f"{user.username}@example.com"
            user.save(update_fields=["email"])
        return user


@pytest.mark.parametrize("view", ["/sync/", "/async/"])
async def test_user_backend_runs_in_a_worker_thread_never_on_the_loop(view: str) -> None:
    RecordingBackend.calls = []
    app = stack(user_backend="tests.test_auth.RecordingBackend")
    data = await get_json(app, view, [("x-forwarded-user", "fay")], client=PROXY)
    assert data["username"] == "fay"
    await get_json(app, view, [("x-forwarded-user", "fay")], client=PROXY)
    assert RecordingBackend.calls == [("fay", True, False), ("fay", False, False)]
    email = await sync_to_async(lambda: User.objects.get(username="fay").email)()
    assert email == "fay@example.com"


async def test_user_is_looked_up_once_per_request_however_often_it_is_read() -> None:
    RecordingBackend.calls = []
    user_cls = (
        build_stack(
            get_asgi_application(),
            [(LAYER, {"user_backend": RecordingBackend})],
            checks="off",
        )
        .instances[0]
        ._user_cls
    )
    user = user_cls(AuthInfo("gus", "test"))
    first = await user.aresolve()
    assert await user.aresolve() is first
    assert await sync_to_async(lambda: user.username)() == "gus"
    assert len(RecordingBackend.calls) == 1
