"""The trusted-header rules behind real servers, over real IPv4 and IPv6 loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tests.conftest import PG
from tests.servers import ROOT, command, free_port, serve

pytestmark = pytest.mark.server

APP = "tests.auth_views:served_app"


def env(trusted: str) -> dict[str, str]:
    return {"DJANGO_SETTINGS_MODULE": "tests.settings", "AUTH_TEST_TRUSTED": trusted}


def get(url: str, headers: Any) -> dict[str, Any]:
    r = httpx.get(url, headers=headers, timeout=5)
    assert r.status_code == 200
    data: dict[str, Any] = r.json()
    return data


@pytest.mark.parametrize("server", ["uvicorn", "hypercorn", "granian"])
def test_real_server_ipv4_proxy_is_trusted_and_outsiders_are_stripped(server: str) -> None:
    with serve(server, APP, env=env("127.0.0.1")) as srv:
        ok = get(srv.url + "/", {"X-Forwarded-User": "alice"})
        assert (ok["identity"], ok["client"]) == ("alice", "127.0.0.1")
        assert "x-forwarded-user" in ok["headers"]  # a trusted proxy's header stays
    with serve(server, APP, env=env("10.0.0.0/8")) as srv:
        for name in ("X-Forwarded-User", "X_Forwarded_User"):
            refused = get(srv.url + "/", {name: "admin"})
            assert refused["identity"] is None and refused["client"] == "127.0.0.1"
            assert not any("forwarded" in h for h in refused["headers"])


@contextmanager
def uvicorn_on_ipv6_loopback(trusted: str) -> Iterator[str]:
    """tests.servers.serve() builds IPv4 URLs; this starts uvicorn on [::1] itself."""
    port = free_port()
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env(trusted)}
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            command("uvicorn", APP, port, "::1"), cwd=ROOT, env=full_env, stdout=log, stderr=log
        )
        url = f"http://[::1]:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(url + "/", timeout=1)
                    break
                except httpx.TransportError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        pytest.fail(f"uvicorn on [::1] did not start: {log.read().decode()}")
                    time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            proc.wait(15)


def test_real_server_ipv6_loopback_proxy_is_trusted() -> None:
    with uvicorn_on_ipv6_loopback("::1") as url:
        ok = get(url + "/", {"X-Forwarded-User": "alice"})
        assert (ok["identity"], ok["client"]) == ("alice", "::1")
    with uvicorn_on_ipv6_loopback("127.0.0.1") as url:
        refused = get(url + "/", {"X-Forwarded-User": "alice"})
        assert (refused["identity"], refused["client"]) == (None, "::1")
        assert "x-forwarded-user" not in refused["headers"]


def test_uvicorn_proxy_headers_replace_the_client_the_layer_checks() -> None:
    # uvicorn's --proxy-headers (on by default, trusting 127.0.0.1) rewrites
    # scope["client"] from X-Forwarded-For: the layer then sees the end client, not the
    # proxy. docs/auth.rst tells deployments to list what the layer will actually see.
    with serve("uvicorn", APP, env=env("127.0.0.1")) as srv:
        data = get(srv.url + "/", {"X-Forwarded-User": "alice", "X-Forwarded-For": "203.0.113.9"})
        assert (data["identity"], data["client"]) == (None, "203.0.113.9")


@pytest.mark.postgres
def test_identity_reaches_views_on_postgresql_behind_uvicorn(postgres: PG) -> None:
    db = f"ms_auth_{uuid.uuid4().hex[:8]}"
    with postgres.connect() as conn:
        conn.execute(f"CREATE DATABASE {db}")
    pg_env = {"DJANGO_SETTINGS_MODULE": "tests.auth_pg_settings", "PG_PORT": str(postgres.port)}
    pg_env["PG_DB"] = db
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "-v0"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **pg_env},
        check=True,
    )
    app = "tests.auth_views:pg_application"
    with serve("uvicorn", app, env={**pg_env, "AUTH_TEST_TRUSTED": "127.0.0.1"}) as srv:
        for view in ("/sync/", "/async/"):
            data = get(srv.url + view, {"X-Forwarded-User": "pg-alice"})
            assert (data["username"], data["backend"]) == ("pg-alice", "trusted-header")
        assert "Traceback" not in srv.log()
    with serve("uvicorn", app, env={**pg_env, "AUTH_TEST_TRUSTED": "10.0.0.0/8"}) as srv:
        data = get(srv.url + "/async/", {"X-Forwarded-User": "pg-mallory"})
        assert data["username"] is None and data["forwarded_user_meta"] is None
    import psycopg

    with psycopg.connect(
        host=postgres.host, port=postgres.port, user="postgres", dbname=db, autocommit=True
    ) as conn:
        names = [r[0] for r in conn.execute("SELECT username FROM auth_user ORDER BY 1")]
    assert names == ["pg-alice"]  # created once, through the thread-sensitive context


# -- issue 15: hostile clients through real servers ----------------------------------------


@pytest.mark.parametrize("server", ["uvicorn", "hypercorn", "granian"])
def test_real_server_underscore_spelling_from_a_trusted_proxy_is_no_identity(server: str) -> None:
    # A proxy that replaces X-Forwarded-User passes the client's X_Forwarded_User on.
    with serve(server, APP, env=env("127.0.0.1")) as srv:
        for name in ("X_Forwarded_User", "x_forwarded_user", "X-Forwarded_User"):
            alone = get(srv.url + "/", {name: "admin"})
            assert alone["identity"] is None and alone["client"] == "127.0.0.1"
            assert not any("forwarded" in h for h in alone["headers"])
        both = get(srv.url + "/", [("X-Forwarded-User", "alice"), ("X_Forwarded_User", "admin")])
        assert both["identity"] == "alice"
        assert [h for h in both["headers"] if "forwarded" in h] == ["x-forwarded-user"]
        assert "Traceback" not in srv.log()


@pytest.mark.parametrize("forwarded_for", ["", ",203.0.113.9", ","])
def test_daphne_proxy_headers_empty_client_is_not_a_unix_socket(forwarded_for: str) -> None:
    # daphne --proxy-headers turns an empty or leading-comma X-Forwarded-For from a TCP
    # client into client ["", 0]: "unix" trusts only a client of None.
    with serve("daphne", APP, env=env("unix"), args=("--proxy-headers",)) as srv:
        data = get(srv.url + "/", {"X-Forwarded-For": forwarded_for, "X-Forwarded-User": "admin"})
        assert data["identity"] is None
        assert "x-forwarded-user" not in data["headers"]


@pytest.mark.parametrize("server", ["uvicorn", "hypercorn", "daphne", "granian"])
def test_real_server_websocket_subprotocol_token_leaves_the_handshake_headers(server: str) -> None:
    import json

    from websockets.sync.client import connect

    with serve(server, APP, env={**env("10.0.0.0/8"), "AUTH_TEST_BEARER": "1"}) as srv:
        url = f"ws://127.0.0.1:{srv.port}/ws/"
        with connect(url, subprotocols=["chat", "bearer.secret-token"], open_timeout=10) as ws:
            assert ws.subprotocol == "chat"
            data = json.loads(ws.recv(timeout=10))
        assert data["identity"] == "ws-alice"
        assert data["subprotocols"] == ["chat"]
        assert data["sec_websocket_protocol"] == ["chat"]
        assert "secret-token" not in json.dumps(data)
        assert "Traceback" not in srv.log()


@pytest.mark.parametrize("server", ["uvicorn", "hypercorn", "daphne", "granian"])
def test_real_server_websocket_query_token_is_nowhere_in_the_scope(server: str) -> None:
    import json

    from websockets.sync.client import connect

    with serve(server, APP, env={**env("10.0.0.0/8"), "AUTH_TEST_BEARER": "1"}) as srv:
        url = f"ws://127.0.0.1:{srv.port}/ws/?room=1&access_token=secret-token"
        with connect(url, open_timeout=10) as ws:
            data = json.loads(ws.recv(timeout=10))
        assert data["identity"] == "ws-alice"
        assert "secret-token" not in data["scope_text"], data["scope_text"]
        assert "room=1" in data["scope_text"]
