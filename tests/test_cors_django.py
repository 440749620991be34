"""CORS around real Django: 404s, 500s, streaming and the view's own Vary, through build_stack."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.asgi import get_asgi_application
from django.test import override_settings

from middleware_stack import build_stack
from tests.asgi import call

APP = "https://app.example.com"
CORS = "middleware_stack.contrib.cors.CORSMiddleware"
OPTIONS: dict[str, Any] = {
    "allow_origins": [APP],
    "allow_credentials": True,
    "expose_headers": ["X-Api-Version"],
    "debug": False,
}


@pytest.fixture
def stack() -> Iterator[Any]:
    with override_settings(ROOT_URLCONF="tests.cors_site.urls"):
        yield build_stack(get_asgi_application(), [(CORS, OPTIONS)], checks="off")


def assert_cors(r: Any) -> None:
    assert r.header("access-control-allow-origin") == APP
    assert r.header("access-control-allow-credentials") == "true"
    assert r.header("access-control-expose-headers") == "x-api-version"
    assert "Origin" in r.header("vary")


async def test_django_404_carries_cors_headers(stack: Any) -> None:
    r = await call(stack, "GET", "/no/such/page/", [("origin", APP)])
    assert r.status == 404
    assert_cors(r)


async def test_django_500_carries_cors_headers(stack: Any) -> None:
    r = await call(stack, "GET", "/boom/", [("origin", APP)])
    assert r.status == 500
    assert_cors(r)


async def test_django_view_response_carries_cors_headers(stack: Any) -> None:
    r = await call(stack, "GET", "/allowed/data", [("origin", APP)])
    assert r.status == 200
    assert r.header("x-api-version") == "7"
    assert_cors(r)


async def test_django_streaming_response_passes_through_in_chunks(stack: Any) -> None:
    r = await call(stack, "GET", "/stream/", [("origin", APP)])
    assert r.status == 200
    assert r.body == b"one,two,three"
    bodies = [m for m in r.messages if m["type"] == "http.response.body" and m.get("body")]
    assert len(bodies) == 3
    assert_cors(r)


async def test_django_vary_is_merged_and_its_cors_header_replaced(stack: Any) -> None:
    r = await call(stack, "GET", "/vary/", [("origin", APP)])
    assert r.header_all("vary") == ["Cookie, Accept-Language, Origin"]
    assert r.header_all("access-control-allow-origin") == [APP]


async def test_django_view_cors_header_removed_for_refused_origin(stack: Any) -> None:
    r = await call(stack, "GET", "/vary/", [("origin", "https://evil.example.net")])
    assert r.header("access-control-allow-origin") is None
    assert r.header_all("vary") == ["Cookie, Accept-Language, Origin"]


async def test_django_never_sees_the_preflight(stack: Any) -> None:
    r = await call(
        stack,
        "OPTIONS",
        "/boom/",
        [("origin", APP), ("access-control-request-method", "GET")],
    )
    assert r.status == 204  # /boom/ would have answered 500
    assert r.header("access-control-allow-origin") == APP
