"""The example project served by real ASGI servers on loopback, lifespan on."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.servers import ROOT, Server, serve, stop

pytestmark = pytest.mark.server

SERVERS = ["uvicorn", "hypercorn", "daphne", "granian"]


@pytest.fixture(scope="module")
def example_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("example") / "db.sqlite3"
    env = {**os.environ, "EXAMPLE_DB": str(db), "PYTHONPATH": str(ROOT)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"],
        cwd=ROOT / "example",
        env=env,
        check=True,
        timeout=120,
    )
    return db


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest, example_db: Path) -> Iterator[Server]:
    env = {"EXAMPLE_DB": str(example_db), "DJANGO_SETTINGS_MODULE": "example_project.settings"}
    with serve(request.param, "example_project.asgi:application", env=env) as srv:
        yield srv


def assert_clean_log(log: str) -> None:
    assert "Traceback" not in log, log
    assert "unsupported" not in log.lower(), log
    assert "ERROR" not in log, log


def test_example_serves_pages_through_the_stack(server: Server) -> None:
    home = httpx.get(server.url + "/")
    assert home.status_code == 200
    assert "path through the stack" in home.text
    assert "lifespan answered" in home.text
    # Lifespan state from ASGI_LIFESPAN reached the view; daphne sends no lifespan, so
    # there the boundary ran ASGI_LIFESPAN at the first request (the fallback).
    assert "started_at=" in home.text
    api = httpx.get(server.url + "/api/hello/")
    assert api.json() == {"hello": "world", "path": "/api/hello/"}
    assert api.headers["content-type"] == "application/json"
    assert httpx.get(server.url + "/api/items/7/").json() == {"id": 7}
    assert httpx.get(server.url + "/missing/").status_code == 404
    stream = httpx.get(server.url + "/api/stream/")
    assert stream.text == "".join(f"chunk {i}\n" for i in range(5))


def test_websocket_is_refused_with_403_and_no_traceback(server: Server) -> None:
    async def connect() -> int | None:
        try:
            async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws/", open_timeout=10):
                return None
        except websockets.InvalidStatus as exc:
            return int(exc.response.status_code)

    assert asyncio.run(connect()) == 403


def test_shutdown_runs_lifespan_and_leaves_a_clean_log(server: Server) -> None:
    assert httpx.get(server.url + "/api/hello/").status_code == 200
    code = stop(server)
    # Ended by our SIGTERM (newer uvicorn re-raises it: -15), never killed after a hang.
    assert code in (0, -15), server.log()
    log = server.log()
    assert_clean_log(log)
    if server.name == "uvicorn":
        assert "Application startup complete" in log
        assert "Application shutdown complete" in log


@pytest.mark.parametrize(("name", "code"), [("uvicorn", 3), ("granian", 1)])
def test_server_exits_with_the_message_when_startup_fails(
    example_db: Path, name: str, code: int
) -> None:
    env = {
        "EXAMPLE_DB": str(example_db),
        "DJANGO_SETTINGS_MODULE": "tests.failing_startup_settings",
    }
    with (
        pytest.raises(RuntimeError) as info,
        serve(name, "example_project.asgi:application", env=env),
    ):
        pass  # pragma: no cover - the server must not come up
    text = str(info.value)
    assert f"exited with {code}" in text
    assert "ConnectionError: database at db.internal:5432 refused the connection" in text


def test_hypercorn_log_says_why_lifespan_did_not_run_behind_an_http_only_layer(
    example_db: Path,
) -> None:
    env = {"EXAMPLE_DB": str(example_db), "DJANGO_SETTINGS_MODULE": "tests.http_only_settings"}
    with serve("hypercorn", "example_project.asgi:application", env=env) as srv:
        assert httpx.get(srv.url + "/healthz", timeout=10).status_code == 200
        log = srv.log()
    # hypercorn only says it carries on without lifespan; the stack says what was lost
    assert "lifespan never reached the app" in log, log
    assert "raised AssertionError: HTTPOnly got a lifespan scope" in log, log
    assert "ASGI_LIFESPAN (" in log and "did not run" in log, log
    assert "'scopes': ['http', 'websocket']" in log, log
