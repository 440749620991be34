"""The auth layer around a raw ASGI app: spoofing rules, tokens, config errors (no DB)."""

from __future__ import annotations

import asyncio
import logging
import warnings
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from middleware_stack import StackConfigurationError, StackWarning, build_stack
from middleware_stack.contrib.auth import (
    AuthInfo,
    AuthPassthroughMiddleware,
    ScopeUser,
    TrustedHeaderBackend,
)
from tests.asgi import call, http_scope

LAYER = "middleware_stack.contrib.auth.AuthPassthroughMiddleware"
TRUSTED = "middleware_stack.contrib.auth.TrustedHeaderBackend"
BEARER = "middleware_stack.contrib.auth.BearerTokenBackend"


class Recorder:
    """A raw ASGI app that keeps the scope it was called with."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
        elif scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 1000})

    @property
    def scope(self) -> dict[str, Any]:
        return self.scopes[-1]


def header_names(scope: dict[str, Any]) -> list[bytes]:
    return [name for name, _ in scope["headers"]]


def layer(app: Any, backends: list[Any], **options: Any) -> AuthPassthroughMiddleware:
    return AuthPassthroughMiddleware(app, backends=backends, **options)


def trusted(*proxies: str, **options: Any) -> tuple[str, dict[str, Any]]:
    return (TRUSTED, {"trusted_proxies": list(proxies), **options})


# -- trusted header: who is believed -------------------------------------------------


@pytest.mark.parametrize(
    ("proxies", "client"),
    [
        (["10.0.0.0/8"], "10.20.30.40"),
        (["127.0.0.1"], "127.0.0.1"),
        (["2001:db8::/32"], "2001:db8::7"),
        (["::1"], "::1"),
        (["10.0.0.0/8"], "::ffff:10.1.2.3"),  # IPv4-mapped client, IPv4 network
        (["::ffff:10.0.0.0/104"], "10.1.2.3"),  # mapped network, plain IPv4 client
    ],
)
async def test_header_from_a_trusted_proxy_becomes_the_identity(
    proxies: list[str], client: str
) -> None:
    app = Recorder()
    r = await call(
        layer(app, [trusted(*proxies)]),
        headers=[("x-forwarded-user", "alice")],
        client=(client, 4000),
    )
    assert r.status == 200
    auth = app.scope["auth"]
    assert (auth.identity, auth.backend, auth.claims) == ("alice", "trusted-header", {})
    assert isinstance(app.scope["user"], ScopeUser)


@pytest.mark.parametrize(
    ("proxies", "client"),
    [
        (["10.0.0.0/8"], "11.0.0.1"),
        (["10.0.0.0/8"], "::ffff:11.0.0.1"),
        (["2001:db8::/32"], "2001:db9::1"),
        (["127.0.0.1"], "::1"),  # IPv6 loopback is another address
        (["127.0.0.1"], "not-an-ip"),
        (["127.0.0.1"], ""),
    ],
)
async def test_header_from_an_untrusted_client_is_stripped_and_ignored(
    proxies: list[str], client: str
) -> None:
    app = Recorder()
    await call(
        layer(app, [trusted(*proxies)]),
        headers=[("x-forwarded-user", "admin"), ("accept", "*/*")],
        client=(client, 4000),
    )
    assert "auth" not in app.scope and "user" not in app.scope
    assert header_names(app.scope) == [b"accept"]


async def test_connection_without_client_address_is_untrusted_unless_unix_is_listed() -> None:
    app = Recorder()
    await call(layer(app, [trusted("127.0.0.1")]), headers=[("x-forwarded-user", "a")], client=None)
    assert "auth" not in app.scope and header_names(app.scope) == []
    await call(layer(app, [trusted("unix")]), headers=[("x-forwarded-user", "a")], client=None)
    assert app.scope["auth"].identity == "a"


@pytest.mark.parametrize(
    "name",
    [b"x_forwarded_user", b"X-Forwarded-User", b"X_FORWARDED_USER", b"x-forwarded_user"],
)
async def test_every_spelling_django_folds_into_the_same_meta_key_is_stripped(name: bytes) -> None:
    app = Recorder()
    scope = http_scope(client=("203.0.113.9", 1))
    scope["headers"] = [(name, b"admin"), (b"host", b"example.com")]
    await call(layer(app, [trusted("127.0.0.1")]), scope=scope)
    assert header_names(app.scope) == [b"host"]


async def test_sharp_s_spelling_that_django_uppercases_to_the_header_is_stripped() -> None:
    # "\xdf".upper() == "SS": Django files "x-forwarded-u\xdfer" under HTTP_X_FORWARDED_USSER,
    # but for a header named X-Pass it would be HTTP_X_PASS.
    app = Recorder()
    scope = http_scope(client=("203.0.113.9", 1))
    scope["headers"] = [(b"x-pa\xdf", b"admin"), (b"x-pas", b"kept")]
    await call(layer(app, [(TRUSTED, {"header": "X-Pass"})]), scope=scope)
    assert header_names(app.scope) == [b"x-pas"]


async def test_duplicate_headers_from_a_trusted_proxy_are_refused_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Recorder()
    with caplog.at_level(logging.WARNING, "middleware_stack.contrib.auth"):
        await call(
            layer(app, [trusted("127.0.0.1")]),
            headers=[("x-forwarded-user", "alice"), ("X-Forwarded-User", "mallory")],
        )
    assert "auth" not in app.scope
    assert header_names(app.scope) == []
    assert "2 copies" in caplog.text


async def test_other_spelling_beside_the_exact_header_from_a_trusted_proxy_is_only_removed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Only the exact name carries an identity (issue 15, item 1): the proxy's own header
    # is believed, the client's underscore copy it passed on is removed and logged.
    app = Recorder()
    with caplog.at_level(logging.WARNING, "middleware_stack.contrib.auth"):
        await call(
            layer(app, [trusted("127.0.0.1")]),
            headers=[("x-forwarded-user", "alice"), ("x_forwarded_user", "mallory")],
        )
    assert app.scope["auth"].identity == "alice"
    assert header_names(app.scope) == [b"x-forwarded-user"]
    assert "mallory" not in caplog.text  # values are never logged
    assert "spelt differently" in caplog.text


@pytest.mark.parametrize(
    "value", [b"", b" alice", b"alice ", b"al\x00ice", b"al\x7fice", b"\xff\xfe", b"a" * 1025]
)
async def test_empty_or_unprintable_value_from_a_trusted_proxy_is_refused(
    value: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    app = Recorder()
    scope = http_scope()
    scope["headers"] = [(b"x-forwarded-user", value)]
    with caplog.at_level(logging.WARNING, "middleware_stack.contrib.auth"):
        await call(layer(app, [trusted("127.0.0.1")]), scope=scope)
    assert "auth" not in app.scope
    assert header_names(app.scope) == []
    assert "Refused X-Forwarded-User" in caplog.text


async def test_utf8_identity_from_a_trusted_proxy_is_accepted() -> None:
    app = Recorder()
    scope = http_scope()
    scope["headers"] = [(b"x-forwarded-user", "j\u00fcrgen@example.com".encode())]
    await call(layer(app, [trusted("127.0.0.1")]), scope=scope)
    assert app.scope["auth"].identity == "j\u00fcrgen@example.com"


async def test_custom_header_name_is_used() -> None:
    app = Recorder()
    await call(
        layer(app, [trusted("127.0.0.1", header="X-Auth-Request-Email")]),
        headers=[("x-auth-request-email", "a@example.com"), ("x-forwarded-user", "bob")],
    )
    assert app.scope["auth"].identity == "a@example.com"
    assert (b"x-forwarded-user", b"bob") in app.scope["headers"]


async def test_scope_is_copied_not_mutated() -> None:
    app = Recorder()
    scope = http_scope(client=("203.0.113.1", 1))
    scope["headers"] = [(b"x-forwarded-user", b"admin")]
    original = {**scope, "headers": list(scope["headers"])}
    await call(layer(app, [trusted("127.0.0.1")]), scope=scope)
    assert scope == original
    assert app.scope is not scope
    trusted_scope = http_scope(headers=[("x-forwarded-user", "alice")])
    await call(layer(app, [trusted("127.0.0.1")]), scope=trusted_scope)
    assert "auth" not in trusted_scope and "user" not in trusted_scope
    assert app.scope["auth"].identity == "alice"


async def test_request_without_credentials_passes_the_same_scope_through() -> None:
    app = Recorder()
    scope = http_scope(headers=[("accept", "*/*")])
    r = await call(layer(app, [trusted("127.0.0.1")]), scope=scope)
    assert r.status == 200
    assert app.scope is scope


async def test_lifespan_passes_through_untouched() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    await layer(app, [trusted()])({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]


def test_client_address_cache_is_bounded() -> None:
    backend = TrustedHeaderBackend(trusted_proxies=["10.0.0.0/8"], cache_size=8)
    for i in range(100):
        assert backend.is_trusted((f"10.0.0.{i}", 1))
        assert not backend.is_trusted((f"11.0.0.{i}", 1))
    assert len(backend._cache) <= 8
    assert backend.is_trusted(("10.9.9.9", 1)) and not backend.is_trusted(("9.9.9.9", 1))


async def test_an_identity_remembered_from_the_proxy_is_still_refused_to_other_clients() -> None:
    app = Recorder()
    mw = layer(app, [trusted("127.0.0.1")])
    for _ in range(2):  # the first request judges the proxy's address, the second is fast
        await call(mw, headers=[("x-forwarded-user", "alice")])
        assert app.scope["auth"].identity == "alice"
    assert mw.backends[0]._identities == {b"alice": "alice"}
    spoof = http_scope(client=("203.0.113.1", 1), headers=[("x-forwarded-user", "alice")])
    await call(mw, scope=spoof)
    assert "auth" not in app.scope and app.scope["headers"] == []


async def test_remembered_identities_are_bounded_and_later_ones_still_authenticate() -> None:
    from middleware_stack.contrib.auth import trusted as module

    app = Recorder()
    mw = layer(app, [trusted("127.0.0.1")])
    backend = mw.backends[0]
    names = [f"user{i}" for i in range(module._IDENTITIES + 50)]
    await call(mw, headers=[("x-forwarded-user", "warm-up")])  # the proxy's address is judged
    backend._identities.clear()
    for name in ["x" * (module._IDENTITY_KEY + 1), *names]:
        await call(mw, headers=[("x-forwarded-user", name)])
        assert app.scope["auth"].identity == name
    assert len(backend._identities) == module._IDENTITIES
    assert all(len(k) <= module._IDENTITY_KEY for k in backend._identities)


@pytest.mark.parametrize("value", [" alice", "alice, admin", "", "al\x07ice"])
async def test_a_refused_value_from_the_proxy_is_never_remembered(value: str) -> None:
    app = Recorder()
    mw = layer(app, [trusted("127.0.0.1")])
    for _ in range(2):  # the second time must be judged again, and refused again
        await call(mw, headers=[("x-forwarded-user", value)])
        assert "auth" not in app.scope
    assert mw.backends[0]._identities == {}


_names = st.lists(
    st.sampled_from("xX-_") | st.sampled_from("forwardeuFORWARDEUS\xdf"), min_size=1, max_size=20
).map("".join)
_header_name = st.one_of(
    _names,
    st.sampled_from(["x-forwarded-user", "X_Forwarded_User", "x-forwarded_USER"]),
    st.builds(
        lambda parts: "".join(parts),
        st.tuples(
            *[
                st.sampled_from([c.lower(), c.upper(), "_" if c == "-" else c])
                for c in "x-forwarded-user"
            ]
        ),
    ),
).map(lambda s: s.encode("latin-1"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    headers=st.lists(st.tuples(_header_name, st.binary(max_size=20)), max_size=6),
    client=st.sampled_from(["203.0.113.5", "::ffff:8.8.8.8", "2001:db8::1", "bogus", ""]),
)
def test_an_untrusted_client_never_produces_an_identity(
    headers: list[tuple[bytes, bytes]], client: str
) -> None:
    app = Recorder()
    mw = layer(app, [trusted("127.0.0.1", "::1", "10.0.0.0/8")])
    scope = http_scope(client=(client, 1))
    scope["headers"] = headers
    asyncio.run(call(mw, scope=scope))
    inner = app.scope
    assert "auth" not in inner and "user" not in inner
    # What Django would build request.META from: no key can be the trusted header's.
    meta = {"HTTP_" + n.decode("latin-1").upper().replace("-", "_") for n in header_names(inner)}
    assert "HTTP_X_FORWARDED_USER" not in meta
    kept = [
        h for h in headers if h[0].decode("latin-1").upper().replace("-", "_") != "X_FORWARDED_USER"
    ]
    assert inner["headers"] == kept


# -- bearer tokens -------------------------------------------------------------------


def sync_verify(token: str) -> Any:
    return {"good": "alice", "claims": AuthInfo("carol", "x", {"scope": "read"})}.get(token)


async def async_verify(token: str) -> Any:
    await asyncio.sleep(0)
    if token == "good":
        return "alice"
    if token == "obj":

        class Claims:
            identity = "dave"
            claims = {"sub": "dave", "aud": "api"}

        return Claims()
    return None


@pytest.mark.parametrize(
    "verify", [sync_verify, async_verify, "tests.test_auth_backends.sync_verify"]
)
async def test_valid_bearer_token_sets_the_identity(verify: Any) -> None:
    app = Recorder()
    r = await call(
        layer(app, [(BEARER, {"verify": verify})]), headers=[("authorization", "Bearer good")]
    )
    assert r.status == 200
    assert (app.scope["auth"].identity, app.scope["auth"].backend) == ("alice", "bearer")


async def test_bearer_verify_may_return_an_object_with_identity_and_claims() -> None:
    app = Recorder()
    await call(
        layer(app, [(BEARER, {"verify": async_verify})]), headers=[("Authorization", "bearer obj")]
    )
    assert app.scope["auth"].identity == "dave"
    assert app.scope["auth"].claims == {"sub": "dave", "aud": "api"}
    await call(
        layer(app, [(BEARER, {"verify": sync_verify})]),
        headers=[("authorization", "Bearer claims")],
    )
    assert app.scope["auth"].claims == {"scope": "read"}


@pytest.mark.parametrize("verify", [sync_verify, async_verify])
async def test_invalid_bearer_token_gets_401_invalid_token(verify: Any) -> None:
    app = Recorder()
    r = await call(
        layer(app, [(BEARER, {"verify": verify, "realm": "api"})]),
        headers=[("authorization", "Bearer nope")],
    )
    assert r.status == 401
    assert r.header("www-authenticate") == 'Bearer realm="api", error="invalid_token"'
    assert app.scopes == []


async def test_bearer_token_on_an_optional_path_is_still_refused_not_anonymous() -> None:
    app = Recorder()
    mw = layer(app, [trusted("127.0.0.1"), (BEARER, {"verify": sync_verify})])
    r = await call(mw, "GET", "/public", headers=[("authorization", "Bearer nope")])
    assert r.status == 401
    assert r.header("www-authenticate") == 'Bearer error="invalid_token"'


@pytest.mark.parametrize(
    "headers",
    [
        [("authorization", "Bearer")],
        [("authorization", "Bearer a b")],
        [("authorization", "Bearer good"), ("authorization", "Bearer good")],
        [("authorization", "Bearer t\u00f6ken")],
    ],
)
async def test_malformed_or_repeated_bearer_header_gets_400_invalid_request(
    headers: list[tuple[str, str]],
) -> None:
    app = Recorder()
    r = await call(layer(app, [(BEARER, {"verify": sync_verify})]), headers=headers)
    assert r.status == 400
    assert r.header("www-authenticate") == 'Bearer error="invalid_request"'
    assert app.scopes == []


async def test_absent_or_other_scheme_authorization_passes_as_anonymous() -> None:
    app = Recorder()
    mw = layer(app, [(BEARER, {"verify": sync_verify})])
    for headers in ([], [("authorization", "Basic YWxpY2U6cHc=")]):
        r = await call(mw, headers=headers)
        assert r.status == 200 and "auth" not in app.scope


async def test_a_verify_that_raises_fails_closed_with_401(caplog: pytest.LogCaptureFixture) -> None:
    def broken(token: str) -> str:
        raise ValueError("signature mismatch")

    app = Recorder()
    with caplog.at_level(logging.WARNING, "middleware_stack.contrib.auth"):
        r = await call(
            layer(app, [(BEARER, {"verify": broken})]), headers=[("authorization", "Bearer x")]
        )
    assert r.status == 401 and app.scopes == []
    assert "signature mismatch" in caplog.text


async def test_sync_verify_runs_off_the_event_loop() -> None:
    loops: list[bool] = []

    def verify(token: str) -> str:
        try:
            asyncio.get_running_loop()
            loops.append(True)
        except RuntimeError:
            loops.append(False)
        return "alice"

    app = Recorder()
    await call(layer(app, [(BEARER, {"verify": verify})]), headers=[("authorization", "Bearer t")])
    assert loops == [False]


async def test_first_backend_with_an_identity_wins() -> None:
    app = Recorder()
    both = [(BEARER, {"verify": sync_verify}), trusted("127.0.0.1")]
    headers = [("authorization", "Bearer good"), ("x-forwarded-user", "bob")]
    await call(layer(app, both), headers=headers)
    assert app.scope["auth"].identity == "alice"
    await call(layer(app, list(reversed(both))), headers=headers)
    assert app.scope["auth"].identity == "bob"
    # The header is still stripped from an untrusted client when the token wins.
    await call(layer(app, both), headers=headers, client=("203.0.113.1", 1))
    assert app.scope["auth"].identity == "alice"
    assert b"x-forwarded-user" not in header_names(app.scope)


async def test_backends_may_be_given_as_instances() -> None:
    app = Recorder()
    mw = layer(app, [TrustedHeaderBackend(trusted_proxies=["127.0.0.1"], name="edge")])
    await call(mw, headers=[("x-forwarded-user", "eve")])
    assert (app.scope["auth"].identity, app.scope["auth"].backend) == ("eve", "edge")


# -- required paths ------------------------------------------------------------------


async def test_required_path_without_identity_gets_401_with_www_authenticate() -> None:
    app = Recorder()
    mw = layer(app, [trusted("127.0.0.1")], required_paths=[r"/api/"])
    r = await call(mw, "GET", "/api/items")
    assert r.status == 401
    assert r.header("www-authenticate") == 'Proxy realm="restricted"'
    assert app.scopes == []
    assert (await call(mw, "GET", "/public")).status == 200
    ok = await call(mw, "GET", "/api/items", headers=[("x-forwarded-user", "alice")])
    assert ok.status == 200 and app.scope["auth"].identity == "alice"


async def test_required_path_challenge_names_the_bearer_scheme() -> None:
    app = Recorder()
    mw = layer(app, [(BEARER, {"verify": sync_verify})], required_paths=["/api/"])
    r = await call(mw, "GET", "/api/x")
    assert r.status == 401 and r.header("www-authenticate") == "Bearer"


@pytest.mark.parametrize("style", ["append in place", "replace the list"])
async def test_every_401_is_a_new_message_so_outer_layers_never_pile_up_headers(
    style: str,
) -> None:
    app = Recorder()
    mw = layer(app, [trusted("127.0.0.1")], required_paths=[r"/api/"])
    count = 0

    async def outer(scope: Any, receive: Any, send: Any) -> None:
        # An ordinary outer layer that adds a header to every response start.
        nonlocal count
        count += 1
        extra = (b"x-request-id", str(count).encode())

        async def tagging_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                if style == "append in place":
                    message.setdefault("headers", []).append(extra)
                else:
                    message["headers"] = [*message.get("headers", []), extra]
            await send(message)

        await mw(scope, receive, tagging_send)

    responses = [await call(outer, "GET", "/api/items") for _ in range(3)]
    assert [r.status for r in responses] == [401, 401, 401]
    assert [r.header_all("x-request-id") for r in responses] == [["1"], ["2"], ["3"]]
    assert [len(r.headers) for r in responses] == [4, 4, 4]
    assert responses[0].messages[0] is not responses[1].messages[0]


@pytest.mark.parametrize("backends", ["one header backend", "header and bearer backends"])
async def test_required_paths_match_the_path_below_root_path(backends: str) -> None:
    app = Recorder()
    chosen: list[Any] = [trusted("127.0.0.1")]
    if backends == "header and bearer backends":  # the general (multi-backend) code path
        chosen.append((BEARER, {"verify": sync_verify}))
    mw = layer(app, chosen, required_paths=[r"^/api/"])
    # Mounted under /app: scope["path"] includes root_path (ASGI), Django's path_info not.
    r = await call(mw, "GET", "/app/api/items", root_path="/app")
    assert r.status == 401 and app.scopes == []
    assert (await call(mw, "GET", "/app/public", root_path="/app")).status == 200
    assert (await call(mw, "GET", "/api/items", root_path="")).status == 401
    ws = await ws_call(mw, ws_scope("/app/api/feed", root_path="/app"))
    assert ws[-1]["code"] == 4401
    assert len(app.scopes) == 1


# -- websocket -----------------------------------------------------------------------


async def ws_call(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "websocket.connect"})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(app(scope, inbox.get, send), 5)
    return sent


def ws_scope(path: str = "/ws", headers: Any = (), **extra: Any) -> dict[str, Any]:
    scope = http_scope("GET", path, headers, **extra)
    scope["type"] = "websocket"
    scope.setdefault("subprotocols", [])
    return scope


async def test_websocket_gets_identity_from_trusted_header() -> None:
    app = Recorder()
    await ws_call(
        layer(app, [trusted("127.0.0.1")]), ws_scope(headers=[("x-forwarded-user", "al")])
    )
    assert app.scope["auth"].identity == "al"


async def test_websocket_token_from_query_parameter_is_used_and_removed() -> None:
    app = Recorder()
    mw = layer(app, [(BEARER, {"verify": async_verify})])
    await ws_call(mw, ws_scope(query_string=b"room=1&access_token=good&x=%20"))
    assert app.scope["auth"].identity == "alice"
    assert app.scope["query_string"] == b"room=1&x=%20"


async def test_websocket_token_from_subprotocol_is_used_and_removed() -> None:
    app = Recorder()
    mw = layer(app, [(BEARER, {"verify": sync_verify, "subprotocol_prefix": "bearer."})])
    await ws_call(mw, ws_scope(subprotocols=["chat.v1", "bearer.good"]))
    assert app.scope["auth"].identity == "alice"
    assert app.scope["subprotocols"] == ["chat.v1"]


async def test_websocket_with_invalid_token_is_accepted_then_closed_with_4401() -> None:
    app = Recorder()
    mw = layer(app, [(BEARER, {"verify": sync_verify, "subprotocol_prefix": "bearer."})])
    sent = await ws_call(mw, ws_scope(subprotocols=["chat.v1", "bearer.nope"]))
    assert sent[0] == {"type": "websocket.accept", "subprotocol": "chat.v1"}  # never the token
    assert sent[1]["type"] == "websocket.close" and sent[1]["code"] == 4401
    assert app.scopes == []


@pytest.mark.parametrize(
    "token",
    ["\u20ac", "\udcc3", "t\u00f6ken"],
    ids=["non-latin-1", "surrogate-escaped-byte", "latin-1"],
)
async def test_websocket_subprotocol_token_outside_ascii_is_refused_not_a_crash(
    token: str,
) -> None:
    app = Recorder()
    mw = layer(app, [(BEARER, {"verify": sync_verify, "subprotocol_prefix": "bearer."})])
    sent = await ws_call(mw, ws_scope(subprotocols=[f"bearer.{token}", "chat.v1"]))
    # Accepted with the other subprotocol (never the token), then closed as invalid.
    assert sent == [
        {"type": "websocket.accept", "subprotocol": "chat.v1"},
        {"type": "websocket.close", "code": 4401, "reason": "invalid credentials"},
    ]
    assert app.scopes == []


async def test_websocket_on_required_path_without_identity_is_closed_with_4401() -> None:
    app = Recorder()
    mw = layer(app, [trusted("127.0.0.1")], required_paths=["/ws"])
    sent = await ws_call(mw, ws_scope())
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]
    assert sent[1]["code"] == 4401 and app.scopes == []


# -- configuration errors ------------------------------------------------------------


async def raw(scope: Any, receive: Any, send: Any) -> None:
    pass


def build(options: dict[str, Any]) -> Any:
    return build_stack(raw, [(LAYER, options)], checks="off")


@pytest.mark.parametrize(
    ("options", "id", "text"),
    [
        ({"backends": [trusted("10.0.0.1/8")]}, "E302", "Did you mean '10.0.0.0/8'"),
        ({"backends": [trusted("10.0.0.300")]}, "E302", "not a valid address"),
        ({"backends": [(TRUSTED, {"trusted_proxies": "10.0.0.1"})]}, "E302", "not a list"),
        ({"backends": [(TRUSTED, {"header": "X Forwarded User"})]}, "E303", "header name"),
        (
            {"backends": [(BEARER, {"verify": "tests.nowhere.verify"})]},
            "E304",
            "cannot be imported",
        ),
        ({"backends": [(BEARER, {"verify": 3})]}, "E304", "not callable"),
        ({"backends": ["middleware_stack.contrib.auth.Nope"]}, "E301", "cannot be imported"),
        ({"backends": ["tests.test_auth_backends.raw"]}, "E301", "not an auth backend"),
        ({"backends": []}, "E301", "empty"),
        ({"backends": "middleware_stack.contrib.auth.TrustedHeaderBackend"}, "E301", "not a list"),
        ({"backends": [(TRUSTED, {"bogus": 1})]}, "E301", "bogus"),
        ({"required_paths": ["(unclosed"]}, "E305", "not a valid regex"),
        ({"required_paths": "^/api/"}, "E305", "not a list"),
        ({"user_backend": "nope.Backend"}, "E306", "cannot be used"),
        ({"create_unknown_user": "yes"}, "E307", "create_unknown_user"),
        ({"backends": [(BEARER, {"verify": sync_verify, "realm": "\u20ac"})]}, "E307", "realm"),
        ({"backends": [(BEARER, {"verify": sync_verify, "realm": "a\r\nb"})]}, "E307", "realm"),
        ({"www_authenticate": "Basic\r\nSet-Cookie: x=1"}, "E307", "WWW-Authenticate"),
        ({"www_authenticate": 'Bearer realm="\u20ac"'}, "E307", "WWW-Authenticate"),
    ],
)
def test_bad_configuration_fails_at_build_time(options: dict[str, Any], id: str, text: str) -> None:
    with pytest.raises(StackConfigurationError) as info:
        build(options)
    assert info.value.id == f"middleware_stack.{id}"
    assert text in str(info.value)
    assert "ASGI_MIDDLEWARE[0]" in str(info.value)


def test_trusting_every_address_is_a_warning() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build({"backends": [trusted("0.0.0.0/0")]})
    found = [w.message for w in caught if isinstance(w.message, StackWarning)]
    assert [w.id for w in found] == ["middleware_stack.W301"]


def test_auth_listed_outside_cors_fails_the_build() -> None:
    pytest.importorskip("middleware_stack.contrib.cors")
    entries = [
        (LAYER, {"backends": [trusted()]}),
        ("middleware_stack.contrib.cors.CORSMiddleware", {"allow_origins": ["https://a.example"]}),
    ]
    with pytest.raises(StackConfigurationError, match="CORS"):
        build_stack(raw, entries, checks="off")
    build_stack(raw, list(reversed(entries)), checks="off")


def test_auth_layer_declares_it_sits_inside_cors() -> None:
    assert AuthPassthroughMiddleware.stack_constraints["inside"] == [
        "middleware_stack.contrib.cors.CORSMiddleware"
    ]


async def test_sharp_s_copy_next_to_the_real_header_from_a_proxy_is_removed() -> None:
    app = Recorder()
    scope = http_scope()
    scope["headers"] = [(b"x-pass", b"alice"), (b"x-pa\xdf", b"mallory")]
    await call(layer(app, [(TRUSTED, {"header": "X-Pass"})]), scope=scope)
    assert app.scope["auth"].identity == "alice" and header_names(app.scope) == [b"x-pass"]
    scope["headers"] = [(b"x-pa\xdf", b"mallory")]
    await call(layer(app, [(TRUSTED, {"header": "X-Pass"})]), scope=scope)
    assert "auth" not in app.scope and header_names(app.scope) == []
    scope["headers"] = [(b"x-pass", b"alice")]
    await call(layer(app, [(TRUSTED, {"header": "X-Pass"})]), scope=scope)
    assert app.scope["auth"].identity == "alice"


async def test_several_header_backends_first_identity_wins_and_all_strip() -> None:
    app = Recorder()
    backends = [
        (TRUSTED, {"header": "X-Auth-User", "trusted_proxies": ["10.0.0.0/8"], "name": "inner"}),
        (TRUSTED, {"header": "X-Forwarded-User", "trusted_proxies": ["127.0.0.1"]}),
    ]
    headers = [("x-auth-user", "ann"), ("x-forwarded-user", "ben")]
    await call(layer(app, backends), headers=headers)
    assert app.scope["auth"].identity == "ben"  # 127.0.0.1 is not trusted by the first
    assert header_names(app.scope) == [b"x-forwarded-user"]
    await call(layer(app, backends), headers=headers, client=("10.1.1.1", 1))
    assert (app.scope["auth"].identity, app.scope["auth"].backend) == ("ann", "inner")
    assert header_names(app.scope) == [b"x-auth-user"]


def test_auth_info_is_read_only() -> None:
    info = AuthInfo("alice", "bearer", {"sub": "alice"})
    with pytest.raises(AttributeError):
        info.identity = "root"  # type: ignore[misc]
    assert (info.identity, info.backend, info.claims) == ("alice", "bearer", {"sub": "alice"})
    assert AuthInfo("a", "b").claims == {}


async def test_proxy_headers_layer_inside_auth_keeps_the_real_peer_for_the_trust_check() -> None:
    # The docs' recipe: uvicorn --no-proxy-headers, and uvicorn's ProxyHeadersMiddleware
    # listed *inside* the auth layer, so auth judges the proxy and the app sees the client.
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    app = Recorder()
    stack = build_stack(
        app,
        [
            (LAYER, {"backends": [trusted("127.0.0.1")]}),
            (ProxyHeadersMiddleware, {"trusted_hosts": "127.0.0.1"}),
        ],
        checks="off",
    )
    headers = [("x-forwarded-user", "alice"), ("x-forwarded-for", "203.0.113.9")]
    await call(stack, headers=headers)
    assert app.scope["auth"].identity == "alice"
    assert app.scope["client"][0] == "203.0.113.9"
