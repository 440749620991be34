"""Real servers' scopes and message handling through a checked stack: no findings.

The servers import ``application`` from this module; it builds a ``checks="warn"``
stack (Starlette's CORS and GZip, asgi-correlation-id) around Django on first use, so
importing this module stays cheap and needs no settings.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from middleware_stack.types import Receive, Scope, Send
from tests.servers import Server, serve

_stack: Any = None


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    global _stack
    if _stack is None:
        import django
        from django.core.asgi import get_asgi_application

        from middleware_stack import build_stack

        django.setup()
        from tests.test_guards import MutatesScope
        from tests.test_guards_clean import THIRD_PARTY, echo_websocket

        entries = [*THIRD_PARTY, MutatesScope] if os.environ.get("GUARDS_BROKEN") else THIRD_PARTY
        _stack = build_stack(
            get_asgi_application(), entries, checks="warn", websocket=echo_websocket
        )
    await _stack(scope, receive, send)


@pytest.fixture(params=["uvicorn", "hypercorn", "daphne"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    env = {"DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONWARNINGS": "always::UserWarning"}
    with serve(request.param, f"{__name__}:application", env=env) as srv:
        yield srv


@pytest.mark.server
def test_real_server_traffic_through_a_checked_stack_has_no_finding(server: Server) -> None:
    host = {"host": "127.0.0.1"}
    with httpx.Client(base_url=server.url, headers=host) as client:
        assert client.get("/").text == "hello"
        assert client.head("/").status_code == 200
        assert client.get("/stream/", headers={"accept-encoding": "gzip"}).text == (
            "chunk0;chunk1;chunk2;"
        )
        assert client.get("/sync-stream/").text == "a;b;"
        assert client.get("/nowhere/").status_code == 404
        assert client.post("/json/", json={"a": 1}).status_code == 200
        preflight = client.options(
            "/",
            headers={
                "origin": "https://app.example.com",
                "access-control-request-method": "POST",
            },
        )
        assert preflight.status_code == 200
    log = server.log()
    assert "middleware_stack.checks" not in log and "StackWarning" not in log, log
    assert "ASGI_MIDDLEWARE[" not in log, log
    assert "Traceback" not in log, log


@pytest.mark.server
def test_a_broken_layer_under_a_real_server_is_reported_in_its_log() -> None:
    env = {"DJANGO_SETTINGS_MODULE": "tests.settings", "GUARDS_BROKEN": "1"}
    with serve("uvicorn", f"{__name__}:application", env=env) as srv:
        assert httpx.get(srv.url + "/", headers={"host": "127.0.0.1"}).text == "hello"
        log = srv.log()
    assert (
        "ASGI_MIDDLEWARE[4] ('tests.test_guards.MutatesScope'): changed the scope it "
        "received instead of copying it (key(s) 'user')"
    ) in log
