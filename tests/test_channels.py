"""Django inside Channels' routers: the boundary finds it; websockets reach the router.

In process with the real ``channels`` package, then under real uvicorn and daphne with
GZip and AuthPassthroughMiddleware in the stack (tests/channels_site).
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.core.asgi import get_asgi_application
from django.test import override_settings
from django.urls import path, re_path

from middleware_stack import build_stack
from middleware_stack.boundary import NOT_DJANGO
from tests.asgi import call
from tests.channels_site.views import EchoConsumer
from tests.servers import ROOT, serve
from tests.test_boundary import websocket_exchange

GZIP = ("starlette.middleware.gzip.GZipMiddleware", {"minimum_size": 100})
SITE = override_settings(
    ROOT_URLCONF="tests.channels_site.urls",
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"],  # sets Content-Length
)


def router(**mapping: Any) -> ProtocolTypeRouter:
    return ProtocolTypeRouter(
        {
            "http": get_asgi_application(),
            "websocket": URLRouter([path("ws/", EchoConsumer.as_asgi())]),
            **mapping,
        }
    )


@SITE
async def test_django_inside_protocol_type_router_gets_lowercased_headers_and_pooled_threads() -> (
    None
):
    stack = build_stack(router(), ["tests.layers.Tag"], checks="off")
    assert stack.boundary.is_django and stack.boundary.pool is not None
    assert "Django at ProtocolTypeRouter['http']" in stack.describe()
    response = await call(stack, path="/page/")
    assert response.status == 200
    assert all(k == k.lower() for k, _ in response.headers)
    assert response.header("x-thread").startswith("middleware_stack-worker")  # type: ignore[union-attr]


@SITE
async def test_gzip_around_a_router_sends_one_content_length_that_matches_the_body() -> None:
    stack = build_stack(router(), [GZIP], checks="off")
    response = await call(stack, path="/page/", headers=[("accept-encoding", "gzip")])
    assert response.header("content-encoding") == "gzip"
    assert response.header_all("content-length") == [str(len(response.body))]
    assert gzip.decompress(response.body).startswith(b"<p>hello from Django")


async def test_websocket_goes_to_the_routers_consumer_not_refused() -> None:
    stack = build_stack(router(), ["tests.layers.Tag"], checks="off")
    sent = await websocket_exchange(stack)
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.send"]
    assert sent[-1]["text"] == "echo ping"
    assert "websocket to the router" in stack.boundary.summary()


async def test_websocket_is_refused_when_the_router_maps_none() -> None:
    stack = build_stack(ProtocolTypeRouter({"http": get_asgi_application()}), [], checks="off")
    sent = await websocket_exchange(stack)
    assert sent == [{"type": "websocket.close", "code": 1000}]


def test_django_is_found_through_nested_routers_and_channels_middleware() -> None:
    inner = ProtocolTypeRouter({"http": URLRouter([re_path(r"^api/", get_asgi_application())])})
    app = AllowedHostsOriginValidator(
        AuthMiddlewareStack(ProtocolTypeRouter({"http": inner, "websocket": inner}))
    )
    stack = build_stack(app, [], checks="off")
    assert stack.boundary.is_django
    where = stack.boundary.shape.django
    assert where is not None and where.endswith("URLRouter('^api/')")
    assert "ProtocolTypeRouter['http']" in where


async def test_lifespan_is_answered_for_a_router_that_maps_none() -> None:
    from tests.asgi import lifespan

    sent = await lifespan(build_stack(router(), [], checks="off"))
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


async def test_a_plain_asgi_app_gets_websockets_and_is_described_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def ws_app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        await receive()
        await send({"type": "websocket.accept"})
        await receive()
        await send({"type": "websocket.send", "text": "plain"})
        await receive()

    class PlainApp:
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await ws_app(scope, receive, send)

    with caplog.at_level(logging.WARNING, logger="middleware_stack"):
        stack = build_stack(PlainApp(), [], checks="off")
        build_stack(PlainApp(), [], checks="off")
    notes = [r.getMessage() for r in caplog.records if "neither Django" in r.getMessage()]
    assert len(notes) == 1 and NOT_DJANGO in notes[0] and "PlainApp" in notes[0]
    assert NOT_DJANGO in stack.describe()
    sent = await websocket_exchange(stack)
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send"]


# -- real servers -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site_db() -> Iterator[dict[str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "DJANGO_SETTINGS_MODULE": "tests.channels_site.settings",
            "TEST_SQLITE_PATH": str(Path(tmp) / "db.sqlite3"),
        }
        subprocess.run(
            [sys.executable, "-m", "django", "migrate", "-v", "0"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            check=True,
        )
        yield env


@pytest.mark.server
@pytest.mark.parametrize("server", ["uvicorn", "daphne"])
def test_channels_project_under_a_real_server(server: str, site_db: dict[str, str]) -> None:
    from websockets.sync.client import connect

    with serve(server, "tests.channels_site.asgi:application", env=site_db) as srv:
        r = httpx.get(srv.url + "/page/", headers={"Accept-Encoding": "gzip"}, timeout=10)
        assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
        assert r.text.startswith("<p>hello from Django")  # httpx decompressed it
        assert r.headers["x-thread"].startswith("middleware_stack-worker")
        who = httpx.get(srv.url + "/who/", headers={"X-Forwarded-User": "bob"}, timeout=10)
        assert who.json() == {"identity": "bob"}
        ws_url = srv.url.replace("http://", "ws://") + "/ws/echo/"
        with connect(ws_url, additional_headers={"X-Forwarded-User": "alice"}) as ws:
            assert json.loads(ws.recv(timeout=10)) == {"user": "alice", "identity": "alice"}
            ws.send("hi")
            assert ws.recv(timeout=10) == "echo hi"
        log = srv.log()
    assert "Traceback" not in log and "R012" not in log, log


# -- manage.py asgi_stack describes the application the server runs ------------------------


def test_asgi_stack_describes_asgi_application_around_a_router_and_says_so() -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "tests.channels_site.settings",
    }
    result = subprocess.run(
        [sys.executable, "-m", "django", "asgi_stack"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Application: tests.channels_site.asgi.application (from ASGI_APPLICATION)"
    assert "GZipMiddleware" in result.stdout and "AuthPassthroughMiddleware" in result.stdout
    assert "channels.routing.ProtocolTypeRouter" in result.stdout
    assert "Django at ProtocolTypeRouter['http']" in result.stdout
    assert "websocket to the router" in result.stdout and "threads pooled" in result.stdout
    assert (
        "Django at ProtocolTypeRouter['http']; requests Django's path (the router calls "
        "Django's handler)"
    ) in result.stdout


def test_asgi_stack_takes_an_application_option_and_says_so() -> None:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("asgi_stack", "--application", "tests.channels_site.asgi:application", stdout=out)
    assert out.getvalue().startswith(
        "Application: tests.channels_site.asgi:application (from --application)\n"
    )
    assert "Django at ProtocolTypeRouter['http']" in out.getvalue()


@pytest.mark.parametrize(
    ("given", "error"),
    [
        ("tests.channels_site.asgi:router", "is not a stack built by build_stack()"),
        ("tests.channels_site.asgi", "write module:attr"),
        ("tests.channels_site.asgi:nothing", "cannot load it: AttributeError"),
    ],
)
def test_asgi_stack_refuses_an_application_that_is_no_stack_with_the_fix(
    given: str, error: str
) -> None:
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match=error):
        call_command("asgi_stack", "--application", given, stdout=StringIO())


def test_asgi_stack_finds_a_stack_inside_a_router() -> None:
    from middleware_stack.routers import find_stack

    stack = build_stack(get_asgi_application(), [], checks="off")
    found, where = find_stack(ProtocolTypeRouter({"http": stack}))
    assert found is stack and where == "ProtocolTypeRouter['http']"
