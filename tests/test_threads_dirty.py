"""A request that leaves its thread's database connection dirty must not poison the thread.

Through uvicorn, on real PostgreSQL and on sqlite, with thread reuse on (one pooled
thread, so every later request lands on the dirty thread) and off (stock ASGI Django, a
new thread per request: the parity the pool must keep).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PG
from tests.servers import Server, serve

pytestmark = pytest.mark.server

Site = Callable[..., AbstractContextManager[Server]]


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "postgres":
        pg = request.getfixturevalue("postgres")
        return {"PG_PORT": str(pg.port), "PG_APP_NAME": "ms_dirty"}
    return {"SQLITE_PATH": str(tmp_path / "site.sqlite3")}


@pytest.fixture
def site(database: dict[str, str]) -> Site:
    @contextmanager
    def run(**env: str) -> Iterator[Server]:
        full = {"DJANGO_SETTINGS_MODULE": "tests.pg_site.settings", **database, **env}
        with serve(
            "uvicorn", "tests.pg_site.asgi:application", env=full, ready_path="/stats/"
        ) as srv:
            yield srv

    return run


def states(c: httpx.Client, url: str, n: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        r = c.get(url + "/db-state/")
        assert r.status_code == 200, r.text[:300]
        out.append(r.json())
    return out


@pytest.mark.parametrize("reuse", ["1", "0"], ids=["pooled", "stock"])
@pytest.mark.parametrize("conn_max_age", ["0", "60"])
def test_a_connection_left_in_a_transaction_does_not_reach_the_next_request(
    site: Site, reuse: str, conn_max_age: str
) -> None:
    env = {"ASGI_THREAD_REUSE": reuse, "ASGI_THREAD_POOL_MAX": "1", "CONN_MAX_AGE": conn_max_age}
    with site(**env) as srv, httpx.Client(timeout=30) as c:
        first = states(c, srv.url, 1)[0]
        for how in ("atomic", "close-in-atomic", "begin"):
            assert c.get(f"{srv.url}/dirty/{how}/").text == how
            after = states(c, srv.url, 10)
            for state in after:
                assert state["in_atomic_block"] is False, how
                assert state["autocommit"] is True, how
                assert state["open_transaction"] is False, how
            if reuse == "1":  # the one pooled thread served them all: reset, not replaced
                assert {s["thread"] for s in after} == {first["thread"]}, how
        log = srv.log()
    if reuse == "1":  # with CONN_MAX_AGE = 0 Django itself closes the raw BEGIN's connection
        resets = log.count("was reset before its thread's next request")
        assert resets == (3 if conn_max_age == "60" else 2), log[-2000:]


@pytest.mark.postgres
@pytest.mark.parametrize("reuse", ["1", "0"], ids=["pooled", "stock"])
def test_a_session_setting_changed_with_set_does_not_reach_the_next_request(
    postgres: PG, reuse: str
) -> None:
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.pg_site.settings",
        "PG_PORT": str(postgres.port),
        "PG_APP_NAME": "ms_dirty",
        "ASGI_THREAD_REUSE": reuse,
        "ASGI_THREAD_POOL_MAX": "1",
        "CONN_MAX_AGE": "60",
    }
    with (
        serve("uvicorn", "tests.pg_site.asgi:application", env=env, ready_path="/stats/") as srv,
        httpx.Client(timeout=30) as c,
    ):
        first, again = states(c, srv.url, 2)
        if reuse == "1":  # a clean request keeps the persistent connection
            assert again["pid"] == first["pid"]
        assert c.get(f"{srv.url}/dirty/app-name/").status_code == 200
        after = states(c, srv.url, 10)
    assert {s["application_name"] for s in after} == {"ms_dirty"}
    if reuse == "1":
        assert {s["thread"] for s in after} == {first["thread"]}
        assert len({s["pid"] for s in after}) == 1  # reconnected once, then kept
