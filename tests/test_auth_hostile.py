"""Issue 15's identity holes, in-process: header spellings, unix, comma-joined values,
IPv6 zone ids, bearer edge cases and concurrent sync ``verify`` calls (no DB)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from middleware_stack import StackWarning
from middleware_stack.contrib.auth import AuthPassthroughMiddleware
from tests.asgi import call, http_scope
from tests.test_auth_backends import BEARER, Recorder, header_names, trusted, ws_call, ws_scope

LOGGER = "middleware_stack.contrib.auth"


def layer(app: Any, backends: list[Any], **options: Any) -> AuthPassthroughMiddleware:
    return AuthPassthroughMiddleware(app, backends=backends, **options)


# -- item 1: only the exact name carries an identity -------------------------------------


@pytest.mark.parametrize("client", ["127.0.0.1", "203.0.113.9"])
async def test_other_spellings_are_logged_at_warning_once_then_at_debug(
    client: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = Recorder()
    mw = layer(app, [trusted("127.0.0.1")])
    with caplog.at_level(logging.DEBUG, LOGGER):
        for name in ("x_forwarded_user", "X_FORWARDED_USER", "x-forwarded_user"):
            await call(mw, headers=[(name, "admin"), ("accept", "*/*")], client=(client, 1))
            assert "auth" not in app.scope and header_names(app.scope) == [b"accept"]
    records = [r for r in caplog.records if "spelt differently" in r.getMessage()]
    assert [r.levelno for r in records] == [logging.WARNING, logging.DEBUG, logging.DEBUG]
    assert "admin" not in caplog.text


# -- item 3: "unix" is a client of None, never "" -------------------------------------------


@pytest.mark.parametrize("client", [("", 0), ["", 0], (), ("", 4000)])
async def test_unix_trusts_no_client_with_an_empty_address(client: Any) -> None:
    app = Recorder()
    await call(
        layer(app, [trusted("unix")]), headers=[("x-forwarded-user", "admin")], client=client
    )
    assert "auth" not in app.scope and header_names(app.scope) == []


async def test_unix_trusts_a_connection_without_client() -> None:
    app = Recorder()
    await call(layer(app, [trusted("unix")]), headers=[("x-forwarded-user", "ann")], client=None)
    assert app.scope["auth"].identity == "ann"


# -- item 4: a comma-joined value is ambiguous ---------------------------------------------


@pytest.mark.parametrize("value", ["alice, admin", "alice,admin", "alice,", ",admin"])
async def test_comma_joined_value_from_a_trusted_proxy_is_refused(
    value: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = Recorder()
    with caplog.at_level(logging.WARNING, LOGGER):
        await call(layer(app, [trusted("127.0.0.1")]), headers=[("x-forwarded-user", value)])
    assert "auth" not in app.scope and header_names(app.scope) == []
    assert "comma-joined" in caplog.text


# -- item 5: IPv6 zone ids -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("proxies", "client", "believed"),
    [
        (["fe80::1"], "fe80::1", True),
        (["fe80::1"], "fe80::1%eth1", False),  # another host: the zone is part of the address
        (["fe80::1%eth1"], "fe80::1%eth1", True),
        (["fe80::1%eth1"], "fe80::1%eth2", False),
        (["fe80::1%eth1"], "fe80::1", False),
        (["fe80::%eth1/64"], "fe80::7%eth1", True),
        (["fe80::%eth1/64"], "fe80::7%eth0", False),
        (["fe80::/64"], "fe80::7%eth1", False),
        (["::/0"], "fe80::7%eth1", False),  # even "every address" names no zone
    ],
)
async def test_ipv6_zone_id_must_match_the_trusted_entry(
    proxies: list[str], client: str, believed: bool
) -> None:
    app = Recorder()
    with pytest.warns(StackWarning) if proxies == ["::/0"] else contextlib.nullcontext():
        mw = layer(app, [trusted(*proxies)])
    await call(mw, headers=[("x-forwarded-user", "ann")], client=(client, 1))
    assert ("auth" in app.scope) is believed
    assert header_names(app.scope) == ([b"x-forwarded-user"] if believed else [])


# -- item 7: bearer edge cases ---------------------------------------------------------------


def verify(token: str) -> Any:
    return {"good": "alice"}.get(token)


@pytest.mark.parametrize(
    "value", ["Bearer\tgood", "Bearer\t good", "bearer", "Bearer ", "Bearer \t"]
)
async def test_malformed_bearer_credentials_are_a_400_never_anonymous(value: str) -> None:
    app = Recorder()
    r = await call(layer(app, [(BEARER, {"verify": verify})]), headers=[("authorization", value)])
    assert r.status == 400
    assert r.header("www-authenticate") == 'Bearer error="invalid_request"'
    assert app.scopes == []


@pytest.mark.parametrize("value", ["Basic Zm9vOmJhcg==", "Bearerx", "Token good"])
async def test_other_schemes_are_left_alone(value: str) -> None:
    app = Recorder()
    r = await call(layer(app, [(BEARER, {"verify": verify})]), headers=[("authorization", value)])
    assert r.status == 200 and "auth" not in app.scope


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    value=st.one_of(
        st.binary(max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b),
        st.tuples(
            st.sampled_from([b"Bearer", b"bearer", b"BEARER", b" Bearer"]),
            st.sampled_from([b"", b" ", b"\t", b"  ", b" \t", b"\t "]),
            st.sampled_from([b"", b"good", b"bad", b"go od", b"g\x00d", b"good="]),
            st.sampled_from([b"", b" ", b"\t"]),
        ).map(b"".join),
    )
)
def test_any_authorization_value_gets_an_answer_and_tabs_are_never_a_separator(
    value: bytes,
) -> None:
    app = Recorder()
    scope = http_scope()
    scope["headers"] = [(b"authorization", value)]
    r = asyncio.run(call(layer(app, [(BEARER, {"verify": verify})]), scope=scope))
    assert r.status in (200, 400, 401)
    head = value.lstrip(b" \t")
    if head[:6].lower() == b"bearer" and head[6:7] == b"\t":
        assert r.status == 400
    if r.status == 200 and app.scopes and "auth" in app.scope:
        assert app.scope["auth"].identity == "alice"
        assert head[:7].lower() == b"bearer "


@pytest.mark.parametrize("claims", ["scope=read", ["read"], 42, ("a", "b")])
async def test_verify_returning_non_mapping_claims_fails_closed_with_a_logged_error(
    claims: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = Recorder()

    def odd(token: str) -> Any:
        return {"identity": "alice", "claims": claims}

    with caplog.at_level(logging.ERROR, LOGGER):
        r = await call(
            layer(app, [(BEARER, {"verify": odd})]), headers=[("authorization", "Bearer t")]
        )
    assert r.status == 401 and app.scopes == []
    assert r.header("www-authenticate") == 'Bearer error="invalid_token"'
    errors = [rec for rec in caplog.records if rec.levelno == logging.ERROR]
    assert errors and "claims must be a mapping" in errors[0].getMessage()


# -- item 6: the subprotocol token leaves the handshake headers too --------------------------


async def test_subprotocol_token_is_removed_from_sec_websocket_protocol() -> None:
    app = Recorder()
    mw = layer(app, [(BEARER, {"verify": verify, "subprotocol_prefix": "bearer."})])
    scope = ws_scope(subprotocols=["chat.v1", "bearer.good"])
    scope["headers"] = [
        (b"host", b"example.com"),
        (b"sec-websocket-protocol", b"chat.v1, bearer.good"),
        (b"sec-websocket-protocol", b"bearer.good"),
    ]
    await ws_call(mw, scope)
    assert app.scope["auth"].identity == "alice"
    assert app.scope["headers"] == [
        (b"host", b"example.com"),
        (b"sec-websocket-protocol", b"chat.v1"),
    ]


# -- item 8: sync verify calls run side by side -------------------------------------------


@pytest.mark.parametrize("thread_sensitive", [True, False])
async def test_concurrent_sync_verify_calls_overlap(thread_sensitive: bool) -> None:
    # Each check waits until all N are inside verify at once: on one shared thread (what
    # sync_to_async(thread_sensitive=True) gives outside a request) the barrier breaks.
    n = 5  # below the loop's default executor size (min(32, cpus + 4))
    barrier = threading.Barrier(n, timeout=30)
    inside = 0
    most = 0
    lock = threading.Lock()
    threads: set[str] = set()

    def slow_verify(token: str) -> str:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
            threads.add(threading.current_thread().name)
        try:
            barrier.wait()
        finally:
            with lock:
                inside -= 1
        return "alice"

    app = Recorder()
    options = {"verify": slow_verify, "thread_sensitive": thread_sensitive}
    mw = layer(app, [(BEARER, options)])
    responses = await asyncio.gather(
        *(call(mw, headers=[("authorization", f"Bearer t{i}")]) for i in range(n))
    )
    assert [r.status for r in responses] == [200] * n
    assert most == n and len(threads) == n
    if thread_sensitive:
        assert all(name.startswith("middleware_stack-worker") for name in threads)


# -- the same class of hole elsewhere: client addresses as cache keys and log fields ---------


async def test_client_address_cache_keeps_no_long_junk_hosts() -> None:
    # Behind --proxy-headers scope["client"][0] comes from X-Forwarded-For.
    app = Recorder()
    backend = layer(app, [trusted("127.0.0.1", cache_size=64)]).backends[0]
    for i in range(500):
        await call(
            layer(app, [backend]),
            headers=[("x-forwarded-user", "admin")],
            client=(f"{i}-" + "h" * 4096, 1),
        )
        assert "auth" not in app.scope
    assert all(host is None or len(host) <= 64 for host in backend._cache)
    assert len(backend._cache) <= 64


async def test_client_address_is_escaped_in_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    app = Recorder()
    with caplog.at_level(logging.WARNING, LOGGER):
        await call(
            layer(app, [trusted("127.0.0.1")]),
            headers=[("x_forwarded_user", "admin")],
            client=("10.0.0.1\r\nFORGED \x1b[31m", 1),
        )
    (record,) = [r for r in caplog.records if "spelt differently" in r.getMessage()]
    message = record.getMessage()
    assert "\r" not in message and "\n" not in message and "\x1b" not in message
    assert "10.0.0.1\\r\\nFORGED \\x1b[31m" in message
