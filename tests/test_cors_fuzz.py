"""Hypothesis: hostile Origin and Access-Control-Request-Headers never raise and never
allow an origin the configuration does not list."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from middleware_stack.contrib.cors import CORSMiddleware
from middleware_stack.types import Receive, Scope, Send
from tests.asgi import call

EXACT = ["https://app.example.com", "http://localhost:8000", "null"]
WILD_SUFFIX = ".example.org"
REGEX = r"https://api-[0-9]+\.example\.net"


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"access-control-allow-origin", b"*"), (b"vary", b"Cookie")],
        }
    )
    await send({"type": "http.response.body", "body": b""})


with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    LAYER = CORSMiddleware(
        app,
        allow_origins=[*EXACT, "https://*" + WILD_SUFFIX],
        allow_origin_regex=REGEX,
        allow_methods=["PUT"],
        allow_headers=["x-custom", "content-type"],
        allow_credentials=True,
        debug=True,
    )


def listed(origin: bytes) -> bool:
    """An independent oracle for the configuration above."""
    import re

    text = origin.decode("latin-1")
    if text in EXACT:
        return True
    m = re.fullmatch(r"https://([a-z0-9_~-]+(?:\.[a-z0-9_~-]+)*)", text)
    if m and m.group(1).endswith(WILD_SUFFIX) and len(m.group(1)) > len(WILD_SUFFIX):
        return True
    return re.fullmatch(REGEX, text) is not None


near_misses = st.sampled_from(
    [
        "https://app.example.com",
        "https://APP.example.com",
        "https://app.example.com:443",
        "https://app.example.com/",
        "https://app.example.com.",
        " https://app.example.com",
        "https://app.example.com\r\nx: y",
        "http://localhost:8000",
        "http://localhost:08000",
        "http://localhost",
        "null",
        "NULL",
        "file://",
        "https://a.example.org",
        "https://a_b~c.example.org",
        "https://a%2e.example.org",
        "https://example.org",
        "https://.example.org",
        "https://a..example.org",
        "https://a.example.org.evil",
        "https://api-1.example.net",
        "https://api-1.example.net.evil",
        "https://api-.example.net",
    ]
)
origins = st.one_of(
    near_misses,
    st.builds(lambda a, b: a + b, near_misses, st.text(max_size=8)),
    st.builds(lambda a, b: b + a, near_misses, st.text(max_size=8)),
    st.text(max_size=60),
).map(lambda s: s.encode("utf-8", "replace"))
origins = st.one_of(origins, st.binary(max_size=60))

header_names = st.sampled_from(["x-custom", "X-Custom", "content-type", "x-other", "", " ", "\t"])
acrh = st.one_of(
    st.lists(st.one_of(header_names, st.text(max_size=10)), max_size=20).map(",".join),
    st.text(max_size=200),
).map(lambda s: s.encode("utf-8", "replace"))


def run(headers: list[tuple[bytes, bytes]], method: str) -> Any:
    return asyncio.run(call(LAYER, method, "/", headers))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(origin=origins, method=st.sampled_from(["GET", "POST", "OPTIONS"]))
def test_actual_requests_never_allow_an_unlisted_origin(origin: bytes, method: str) -> None:
    r = run([(b"origin", origin)], method)
    assert r.status == 200
    acao = r.header_all("access-control-allow-origin")
    if listed(origin):
        assert acao == [origin.decode("latin-1")]
        assert r.header("access-control-allow-credentials") == "true"
    else:
        assert acao == []
        assert r.header("access-control-allow-credentials") is None
    assert r.header_all("vary") == ["Cookie, Origin"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    origin=origins,
    request_headers=st.lists(acrh, max_size=3),
    method=st.sampled_from([b"PUT", b"GET", b"put", b"DELETE", b"P UT"]),
)
def test_preflights_never_raise_and_never_allow_an_unlisted_origin(
    origin: bytes, request_headers: list[bytes], method: bytes
) -> None:
    headers = [(b"origin", origin), (b"access-control-request-method", method)]
    headers += [(b"access-control-request-headers", v) for v in request_headers]
    r = run(headers, "OPTIONS")
    assert r.status in (204, 403)
    if r.status == 204:
        assert listed(origin)
        assert method in (b"PUT", b"GET")
        names = {
            n.strip(b" \t").lower()
            for v in request_headers
            for n in v.split(b",")
            if n.strip(b" \t")
        }
        assert names <= {b"x-custom", b"content-type"}
        assert r.header("access-control-allow-origin") == origin.decode("latin-1")
    else:
        assert not [k for k, _ in r.headers if k.startswith(b"access-control-")]
        assert all(b"\n" not in v and b"\r" not in v for _, v in r.headers)
        assert r.body.isascii() and b"\r" not in r.body
