"""CORS conformance: one table row per behaviour of the issue, around a raw ASGI app.

Every row asserts the status, whether the app was called, and the four headers that must
never leak to a refused origin (ACAO, ACAC, ACEH, ACAPN), plus any header the row names.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import pytest

from middleware_stack.contrib.cors import CORSMiddleware
from middleware_stack.types import Message, Receive, Scope, Send
from tests.asgi import call, http_scope

ACAO = "access-control-allow-origin"
ACAC = "access-control-allow-credentials"
ACEH = "access-control-expose-headers"
ACAM = "access-control-allow-methods"
ACAH = "access-control-allow-headers"
MAX_AGE = "access-control-max-age"
ACAPN = "access-control-allow-private-network"
PREFLIGHT_VARY = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"

APP = "https://app.example.com"
EVIL = "https://evil.example.net"

EXACT: dict[str, Any] = {"allow_origins": [APP]}
FULL: dict[str, Any] = {
    "allow_origins": [APP],
    "allow_credentials": True,
    "allow_methods": ["PUT", "PATCH"],
    "allow_headers": ["X-Custom", "Content-Type"],
    "expose_headers": ["X-Total"],
    "max_age": 600,
}
STAR: dict[str, Any] = {"allow_origins": ["*"], "allow_headers": ["x-custom"]}
WILD: dict[str, Any] = {"allow_origins": ["https://*.example.com"]}
REGEX: dict[str, Any] = {
    "allow_origin_regex": [r"https://[a-z]+\.example\.org", r"http://localhost:[0-9]+$"]
}
SPECIAL: dict[str, Any] = {"allow_origins": ["null", "file://"]}
PNA: dict[str, Any] = {"allow_origins": [APP], "allow_private_network": True}
PATHS: dict[str, Any] = {"allow_origins": [APP], "paths": r"^/api/"}
ANY_METHOD_HEADER: dict[str, Any] = {
    "allow_origins": [APP],
    "allow_methods": ["*"],
    "allow_headers": ["*"],
}


def pre(origin: str = APP, method: str = "PUT", *extra: tuple[str, str]) -> list[tuple[str, str]]:
    return [("origin", origin), ("access-control-request-method", method), *extra]


@dataclass
class Case:
    id: str
    options: dict[str, Any]
    method: str
    headers: list[tuple[str, str]]
    status: int
    expect: dict[str, str | None] = field(default_factory=dict)
    app_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    path: str = "/"

    @property
    def app_called(self) -> bool:
        return self.status == 200


def c(
    id: str,
    options: dict[str, Any],
    method: str,
    headers: list[tuple[str, str]],
    status: int,
    **kw: Any,
) -> Any:
    return pytest.param(Case(id, options, method, headers, status, **kw), id=id)


ORIGIN = "origin"
REFUSED: dict[str, str | None] = {"vary": PREFLIGHT_VARY}
SPECIAL_OPTS = {**SPECIAL, "allow_methods": ["PUT"]}

CASES = [
    # -- which requests are CORS requests -------------------------------------------------
    c("no-origin-gets-no-cors-headers-but-vary-origin", EXACT, "GET", [], 200, expect={"vary": "Origin"}),
    c("options-without-acrm-goes-to-app", EXACT, "OPTIONS", [(ORIGIN, APP)], 200,
      expect={ACAO: APP, "vary": "Origin", ACAM: None}),
    c("options-with-empty-acrm-goes-to-app", EXACT, "OPTIONS",
      [(ORIGIN, APP), ("access-control-request-method", "")], 200, expect={ACAO: APP}),
    c("options-without-origin-goes-to-app", EXACT, "OPTIONS",
      [("access-control-request-method", "PUT")], 200, expect={"vary": "Origin"}),
    # -- origin matching ------------------------------------------------------------------
    c("exact-origin-allowed", EXACT, "GET", [(ORIGIN, APP)], 200, expect={ACAO: APP, "vary": "Origin"}),
    c("unlisted-origin-refused", EXACT, "GET", [(ORIGIN, EVIL)], 200, expect={"vary": "Origin"}),
    c("uppercase-request-origin-is-not-a-browser", EXACT, "GET",
      [(ORIGIN, "https://APP.example.com")], 200),
    c("request-origin-with-default-port-refused", EXACT, "GET", [(ORIGIN, APP + ":443")], 200),
    c("request-origin-with-trailing-slash-refused", EXACT, "GET", [(ORIGIN, APP + "/")], 200),
    c("request-origin-with-path-refused", EXACT, "GET", [(ORIGIN, APP + "/x")], 200),
    c("duplicated-origin-refused", EXACT, "GET", [(ORIGIN, APP), (ORIGIN, APP)], 200,
      expect={"vary": "Origin"}),
    c("comma-joined-origin-refused", EXACT, "GET", [(ORIGIN, f"{APP}, {APP}")], 200),
    c("empty-origin-refused", EXACT, "GET", [(ORIGIN, "")], 200),
    c("configured-origin-normalised", {"allow_origins": ["HTTPS://App.Example.COM:443"]}, "GET",
      [(ORIGIN, APP)], 200, expect={ACAO: APP}),
    c("configured-default-http-port-removed", {"allow_origins": ["http://localhost:80"]}, "GET",
      [(ORIGIN, "http://localhost")], 200, expect={ACAO: "http://localhost"}),
    c("configured-idn-host-punycoded", {"allow_origins": ["https://bücher.example"]}, "GET",
      [(ORIGIN, "https://xn--bcher-kva.example")], 200, expect={ACAO: "https://xn--bcher-kva.example"}),
    c("non-default-port-must-match", {"allow_origins": [APP + ":8443"]}, "GET", [(ORIGIN, APP)], 200),
    c("non-default-port-matches", {"allow_origins": [APP + ":8443"]}, "GET",
      [(ORIGIN, APP + ":8443")], 200, expect={ACAO: APP + ":8443"}),
    c("scheme-must-match", EXACT, "GET", [(ORIGIN, "http://app.example.com")], 200),
    c("null-unlisted-refused", EXACT, "GET", [(ORIGIN, "null")], 200),
    c("null-listed-allowed", SPECIAL, "GET", [(ORIGIN, "null")], 200, expect={ACAO: "null"}),
    c("file-listed-allowed", SPECIAL, "GET", [(ORIGIN, "file://")], 200, expect={ACAO: "file://"}),
    c("file-unlisted-refused", EXACT, "GET", [(ORIGIN, "file://")], 200),
    c("star-sends-star", STAR, "GET", [(ORIGIN, EVIL)], 200, expect={ACAO: "*", "vary": "Origin"}),
    c("star-refuses-malformed-origin", STAR, "GET", [(ORIGIN, "https://x.com/path")], 200),
    c("star-refuses-unlisted-null", STAR, "GET", [(ORIGIN, "null")], 200),
    c("star-refuses-default-port", STAR, "GET", [(ORIGIN, "https://x.com:443")], 200),
    c("wildcard-one-level", WILD, "GET", [(ORIGIN, "https://a.example.com")], 200,
      expect={ACAO: "https://a.example.com"}),
    c("wildcard-any-depth", WILD, "GET", [(ORIGIN, "https://a.b.c.example.com")], 200,
      expect={ACAO: "https://a.b.c.example.com"}),
    c("wildcard-never-apex", WILD, "GET", [(ORIGIN, "https://example.com")], 200),
    c("wildcard-dots-literal", WILD, "GET", [(ORIGIN, "https://aexample.com")], 200),
    c("wildcard-dots-literal-tld", WILD, "GET", [(ORIGIN, "https://a.examplexcom")], 200),
    c("wildcard-empty-label", WILD, "GET", [(ORIGIN, "https://.example.com")], 200),
    c("wildcard-scheme-must-match", WILD, "GET", [(ORIGIN, "http://a.example.com")], 200),
    c("wildcard-suffix-attack", WILD, "GET", [(ORIGIN, "https://a.example.com.evil.net")], 200),
    c("wildcard-port-must-match", WILD, "GET", [(ORIGIN, "https://a.example.com:8443")], 200),
    c("regex-full-match", REGEX, "GET", [(ORIGIN, "https://abc.example.org")], 200,
      expect={ACAO: "https://abc.example.org"}),
    c("regex-prefix-is-not-a-match", REGEX, "GET", [(ORIGIN, "https://abc.example.org.evil.net")], 200),
    c("regex-list-second-pattern", REGEX, "GET", [(ORIGIN, "http://localhost:3000")], 200,
      expect={ACAO: "http://localhost:3000"}),
    # -- actual responses -------------------------------------------------------------------
    c("credentials-and-expose-when-configured", FULL, "GET", [(ORIGIN, APP)], 200,
      expect={ACAO: APP, ACAC: "true", ACEH: "x-total"}),
    c("no-credentials-header-when-off", EXACT, "POST", [(ORIGIN, APP)], 200, expect={ACAO: APP}),
    c("refused-origin-gets-no-credentials-or-expose", FULL, "GET", [(ORIGIN, EVIL)], 200),
    c("app-cors-headers-removed-for-refused-origin", EXACT, "GET", [(ORIGIN, EVIL)], 200,
      app_headers=[(b"access-control-allow-origin", b"*"),
                   (b"access-control-allow-credentials", b"true")]),
    c("app-cors-headers-replaced-for-allowed-origin", EXACT, "GET", [(ORIGIN, APP)], 200,
      expect={ACAO: APP},
      app_headers=[(b"access-control-allow-origin", b"*"),
                   (b"access-control-expose-headers", b"x-secret")]),
    c("vary-merged-into-existing", EXACT, "GET", [(ORIGIN, APP)], 200,
      expect={ACAO: APP, "vary": "Cookie, Origin"}, app_headers=[(b"vary", b"Cookie")]),
    c("vary-already-naming-origin-kept", EXACT, "GET", [(ORIGIN, APP)], 200,
      expect={ACAO: APP, "vary": "Accept, origin"}, app_headers=[(b"vary", b"Accept, origin")]),
    c("vary-star-kept", EXACT, "GET", [(ORIGIN, EVIL)], 200,
      expect={"vary": "*"}, app_headers=[(b"vary", b"*")]),
    # -- preflight ------------------------------------------------------------------------------
    c("preflight-success", FULL, "OPTIONS", pre(), 204,
      expect={ACAO: APP, ACAC: "true", ACAM: "GET, HEAD, POST, PUT, PATCH",
              MAX_AGE: "600", "vary": PREFLIGHT_VARY, ACEH: None}),
    c("preflight-lists-allowed-headers", FULL, "OPTIONS", pre(APP, "PUT",
      ("access-control-request-headers", "x-custom")), 204,
      expect={ACAO: APP, ACAC: "true", ACAH: "x-custom, content-type"}),
    c("preflight-safelisted-method-always-passes", EXACT, "OPTIONS", pre(APP, "POST"), 204,
      expect={ACAO: APP, ACAM: "GET, HEAD, POST"}),
    c("preflight-head-always-passes", EXACT, "OPTIONS", pre(APP, "HEAD"), 204,
      expect={ACAO: APP}),
    c("preflight-unlisted-method-refused", FULL, "OPTIONS", pre(APP, "DELETE"), 403,
      expect=REFUSED),
    c("preflight-method-case-sensitive", FULL, "OPTIONS", pre(APP, "patch"), 403, expect=REFUSED),
    c("preflight-headers-case-whitespace-empties", FULL, "OPTIONS", pre(APP, "PUT",
      ("access-control-request-headers", " X-Custom ,, ,\tCONTENT-TYPE,")), 204,
      expect={ACAO: APP, ACAC: "true"}),
    c("preflight-headers-on-several-lines", FULL, "OPTIONS", pre(APP, "PUT",
      ("access-control-request-headers", "x-custom"),
      ("access-control-request-headers", "content-type")), 204, expect={ACAO: APP, ACAC: "true"}),
    c("preflight-unlisted-header-refused", FULL, "OPTIONS", pre(APP, "PUT",
      ("access-control-request-headers", "x-custom,x-other")), 403, expect=REFUSED),
    c("preflight-malformed-header-name-refused", FULL, "OPTIONS", pre(APP, "PUT",
      ("access-control-request-headers", "x custom")), 403, expect=REFUSED),
    c("preflight-too-many-headers-refused", {**ANY_METHOD_HEADER}, "OPTIONS", pre(APP, "PUT",
      ("access-control-request-headers", ",".join(f"x-{i}" for i in range(200)))), 403,
      expect=REFUSED),
    c("preflight-unlisted-origin-refused", FULL, "OPTIONS", pre(EVIL), 403, expect=REFUSED),
    c("preflight-malformed-origin-refused", FULL, "OPTIONS", pre(APP + "/"), 403,
      expect=REFUSED),
    c("preflight-duplicate-acrm-refused", FULL, "OPTIONS",
      [*pre(), ("access-control-request-method", "PUT")], 403, expect=REFUSED),
    c("preflight-non-token-method-refused", ANY_METHOD_HEADER, "OPTIONS", pre(APP, "PU T"), 403,
      expect=REFUSED),
    c("preflight-no-max-age-unless-configured", EXACT, "OPTIONS", pre(APP, "GET"), 204,
      expect={ACAO: APP, MAX_AGE: None}),
    c("preflight-star", STAR, "OPTIONS", pre(EVIL, "GET",
      ("access-control-request-headers", "x-custom")), 204, expect={ACAO: "*", ACAH: "x-custom"}),
    c("preflight-any-method-reflected", ANY_METHOD_HEADER, "OPTIONS", pre(APP, "PURGE"), 204,
      expect={ACAO: APP, ACAM: "PURGE"}),
    c("preflight-any-header-reflected-lowercase", ANY_METHOD_HEADER, "OPTIONS", pre(APP, "GET",
      ("access-control-request-headers", "X-A, x-b")), 204, expect={ACAO: APP, ACAH: "x-a, x-b"}),
    c("preflight-any-header-does-not-cover-authorization", ANY_METHOD_HEADER, "OPTIONS",
      pre(APP, "GET", ("access-control-request-headers", "authorization")), 403, expect=REFUSED),
    c("preflight-listed-authorization-with-any-header",
      {**ANY_METHOD_HEADER, "allow_headers": ["*", "Authorization"]}, "OPTIONS",
      pre(APP, "GET", ("access-control-request-headers", "authorization,x-y")), 204,
      expect={ACAO: APP, ACAH: "authorization, x-y"}),
    c("preflight-null-listed", SPECIAL_OPTS, "OPTIONS", pre("null"), 204, expect={ACAO: "null"}),
    # -- private network access -----------------------------------------------------------------
    c("pna-enabled-and-requested", PNA, "OPTIONS",
      pre(APP, "GET", ("access-control-request-private-network", "true")), 204,
      expect={ACAO: APP, ACAPN: "true", "vary": PREFLIGHT_VARY
              + ", Access-Control-Request-Private-Network"}),
    c("pna-enabled-not-requested", PNA, "OPTIONS", pre(APP, "GET"), 204,
      expect={ACAO: APP, ACAPN: None}),
    c("pna-requested-but-disabled", EXACT, "OPTIONS",
      pre(APP, "GET", ("access-control-request-private-network", "true")), 204,
      expect={ACAO: APP, ACAPN: None}),
    c("pna-refused-origin", PNA, "OPTIONS",
      pre(EVIL, "GET", ("access-control-request-private-network", "true")), 403),
    c("pna-never-on-actual-responses", PNA, "GET",
      [(ORIGIN, APP), ("access-control-request-private-network", "true")], 200, expect={ACAO: APP}),
    # -- paths ------------------------------------------------------------------------------------
    c("paths-inside", PATHS, "GET", [(ORIGIN, APP)], 200, expect={ACAO: APP}, path="/api/items"),
    c("paths-outside-untouched", PATHS, "GET", [(ORIGIN, APP)], 200, expect={ACAO: "*", "vary": None},
      path="/admin/", app_headers=[(b"access-control-allow-origin", b"*")]),
    c("paths-outside-preflight-goes-to-app", PATHS, "OPTIONS", pre(), 200, path="/other"),
]  # fmt: skip


def make_app(app_headers: list[tuple[bytes, bytes]], calls: list[Scope]) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": list(app_headers)})
        await send({"type": "http.response.body", "body": b"app"})

    return app


def build(options: dict[str, Any], app: Any) -> CORSMiddleware:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CORSMiddleware(app, **options)


def test_the_table_has_at_least_fifty_cases() -> None:
    assert len(CASES) >= 50


@pytest.mark.parametrize("case", CASES)
async def test_conformance(case: Case) -> None:
    calls: list[Scope] = []
    layer = build({"debug": False, **case.options}, make_app(case.app_headers, calls))
    r = await call(layer, case.method, case.path, case.headers)
    assert r.status == case.status, r
    assert bool(calls) == case.app_called
    expected = {ACAO: None, ACAC: None, ACEH: None, ACAPN: None, **case.expect}
    for name, value in expected.items():
        got = r.header_all(name)
        if value is None:
            assert got == [], f"{name}: {got}"
        else:
            assert got == [value], f"{name}: {got}"
    if case.status == 403:
        assert not [k for k, _ in r.headers if k.startswith(b"access-control-")]
        assert r.body == b""


# -- behaviours outside the table ---------------------------------------------------------


async def test_non_http_scopes_pass_untouched() -> None:
    seen: list[tuple[Scope, Any]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope, send))

    layer = build(EXACT, app)

    async def send(message: Message) -> None:
        pass

    async def receive() -> Message:
        return {}

    for scope in (
        {"type": "websocket", "path": "/", "headers": [(b"origin", EVIL.encode())]},
        {"type": "lifespan"},
    ):
        await layer(scope, receive, send)
        assert seen[-1][0] is scope and seen[-1][1] is send


async def test_requests_without_origin_get_only_vary_and_keep_app_cors_headers() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"access-control-allow-origin", b"https://set-by.app"), (b"vary", b"Cookie")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    layer = build(EXACT, app)
    r = await call(layer, "GET", "/")
    # Not a CORS request: nothing CORS is added or removed, but caches must key on Origin.
    assert r.headers == [
        (b"access-control-allow-origin", b"https://set-by.app"),
        (b"vary", b"Cookie, Origin"),
    ]


async def test_streaming_body_passes_through_untouched() -> None:
    chunks = [b"one", b"", b"two" * 1000, b"three"]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i, chunk in enumerate(chunks):
            await send(
                {"type": "http.response.body", "body": chunk, "more_body": i < len(chunks) - 1}
            )

    layer = build(EXACT, app)
    r = await call(layer, "GET", "/", [("origin", APP)])
    bodies = [m for m in r.messages if m["type"] == "http.response.body"]
    assert [m["body"] for m in bodies] == chunks
    assert [m.get("more_body") for m in bodies] == [True, True, True, False]
    assert r.header(ACAO) == APP


async def test_headers_given_as_lists_and_tuples_are_both_handled() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [[b"vary", b"Cookie"], (b"x-a", b"1")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    r = await call(build(EXACT, app), "GET", "/", [("origin", APP)])
    assert r.header_all("vary") == ["Cookie, Origin"]
    assert r.header("x-a") == "1"


@pytest.mark.parametrize("path", ["/mounted/api/x", "/api/x"])
async def test_root_path_is_not_part_of_the_paths_match(path: str) -> None:
    # ASGI puts the mount prefix into path too; an old server leaves it out.
    layer = build(PATHS, make_app([], []))
    scope = http_scope("GET", path, [("origin", APP)], root_path="/mounted")
    r = await call(layer, scope=scope)
    assert r.header(ACAO) == APP
    outside = http_scope("GET", "/mounted/other", [("origin", APP)], root_path="/mounted")
    assert (await call(layer, scope=outside)).header(ACAO) is None


async def test_megabytes_of_commas_are_parsed_and_the_real_name_found() -> None:
    layer = build(FULL, make_app([], []))
    acrh = "," * 3_000_000 + " x-custom " + ", \t" * 500_000
    r = await call(layer, "OPTIONS", "/", pre(APP, "PUT", ("access-control-request-headers", acrh)))
    assert r.status == 204
    assert r.header(ACAO) == APP


async def test_megabytes_of_names_are_refused_after_the_cap() -> None:
    layer = build(ANY_METHOD_HEADER, make_app([], []))
    acrh = "x-a," * 1_000_000
    r = await call(layer, "OPTIONS", "/", pre(APP, "GET", ("access-control-request-headers", acrh)))
    assert r.status == 403


async def test_refused_preflight_in_debug_mode_explains_with_nearest_origin(
    caplog: pytest.LogCaptureFixture,
) -> None:
    layer = build({**FULL, "debug": True}, make_app([], []))
    with caplog.at_level(logging.WARNING, logger="middleware_stack.cors"):
        r = await call(layer, "OPTIONS", "/api", pre("https://app.example.co"))
    assert r.status == 403
    assert r.header("content-type") == "text/plain; charset=utf-8"
    assert r.header("x-content-type-options") == "nosniff"
    assert not r.header(ACAO)
    text = r.body.decode()
    assert "origin 'https://app.example.co' is not allowed" in text
    assert f"did you mean '{APP}'" in text
    (record,) = caplog.records
    assert record.name == "middleware_stack.cors"
    assert "did you mean" in record.getMessage() and "path='/api'" in record.getMessage()


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        (pre(APP, "DELETE"), "method 'DELETE' is not allowed"),
        (
            pre(APP, "PUT", ("access-control-request-headers", "x-custom, X-Secret")),
            "request header 'x-secret' is not allowed",
        ),
        (pre("HTTPS://APP.EXAMPLE.COM"), f"(did you mean '{APP}'?)"),
        ([("origin", APP), *pre()], "several Origin header lines"),
    ],
    ids=["method", "header", "uppercase-origin", "duplicate-origin"],
)
async def test_debug_body_names_what_was_refused(headers: Any, reason: str) -> None:
    layer = build({**FULL, "debug": True}, make_app([], []))
    r = await call(layer, "OPTIONS", "/", headers)
    assert r.status == 403
    assert reason in r.body.decode()


async def test_hostile_values_are_escaped_in_the_log_and_body(
    caplog: pytest.LogCaptureFixture,
) -> None:
    layer = build({**FULL, "debug": True}, make_app([], []))
    hostile = "https://x.test\r\nSet-Cookie: a=b\x1b[31m'"
    scope = http_scope("OPTIONS", "/\r\nforged", [])
    scope["headers"] = [
        (b"origin", hostile.encode("latin-1")),
        (b"access-control-request-method", b"PUT"),
    ]
    with caplog.at_level(logging.WARNING, logger="middleware_stack.cors"):
        r = await call(layer, scope=scope)
    assert r.status == 403
    message = caplog.records[0].getMessage()
    for text in (message, r.body.decode("ascii")):
        assert "\r" not in text and "\x1b" not in text
        assert "\n" not in text.rstrip("\n")
        assert "\\x0d\\x0aSet-Cookie" in text
    assert "\\x0d\\x0aforged" in message
    assert all(b"\n" not in v and b"\r" not in v for _, v in r.headers)


async def test_refused_preflight_without_debug_has_empty_body_and_no_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    layer = build({**FULL, "debug": False}, make_app([], []))
    with caplog.at_level(logging.DEBUG, logger="middleware_stack.cors"):
        r = await call(layer, "OPTIONS", "/", pre(EVIL))
    assert (r.status, r.body) == (403, b"")
    assert caplog.records == []


@pytest.mark.parametrize("debug", [False, True])
async def test_every_refused_preflight_gets_its_own_headers_list(debug: bool) -> None:
    layer = build({**FULL, "debug": debug}, make_app([], []))
    count = 0

    async def outer(scope: Scope, receive: Receive, send: Send) -> None:
        # An ordinary outer layer that appends a header to the list it is given.
        nonlocal count
        count += 1
        rid = str(count).encode()

        async def tagging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", rid))
            await send(message)

        await layer(scope, receive, tagging_send)

    responses = [await call(outer, "OPTIONS", "/", pre(EVIL)) for _ in range(3)]
    assert [r.status for r in responses] == [403, 403, 403]
    assert [r.header_all("x-request-id") for r in responses] == [["1"], ["2"], ["3"]]
    assert [r.header_all("vary") for r in responses] == [[PREFLIGHT_VARY]] * 3


async def test_the_preflight_never_calls_the_app_even_when_refused() -> None:
    calls: list[Scope] = []
    layer = build(FULL, make_app([], calls))
    for headers in (pre(), pre(EVIL), pre(APP, "DELETE")):
        await call(layer, "OPTIONS", "/", headers)
    assert calls == []


async def test_an_app_reusing_one_start_message_never_leaks_an_origin() -> None:
    start = {"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"1")]}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(start)
        await send({"type": "http.response.body", "body": b""})

    layer = build(EXACT, app)
    first = await call(layer, "GET", "/", [("origin", APP)])
    second = await call(layer, "GET", "/", [])
    assert first.header(ACAO) == APP
    assert second.headers == [(b"x-a", b"1"), (b"vary", b"Origin")]
    assert second.header(ACAO) is None
    assert start["headers"] == [(b"x-a", b"1")]


async def test_ipv6_origins_are_normalised_and_matched() -> None:
    layer = build({"allow_origins": ["HTTP://[::1]:80", "http://[::1]:8000"]}, make_app([], []))
    for origin in ("http://[::1]", "http://[::1]:8000"):
        r = await call(layer, "GET", "/", [("origin", origin)])
        assert r.header(ACAO) == origin
