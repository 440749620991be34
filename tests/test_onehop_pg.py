"""The one-hop path under uvicorn against a real PostgreSQL: persistent connections, the
dirty-connection reset and the thread bound hold (tests/pg_site, served on loopback)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest

from tests.conftest import PG
from tests.servers import Server, serve_pg_site

pytestmark = [pytest.mark.server, pytest.mark.postgres]

Serve = Callable[..., AbstractContextManager[tuple[Server, str]]]
ONE_HOP = "one-hop (1 hand-over per sync request)"


@pytest.fixture
def site(postgres: PG) -> Serve:
    return functools.partial(serve_pg_site, postgres.port)


@pytest.mark.parametrize("one_hop", ["1", "0"])
def test_conn_max_age_connections_are_reused_across_requests_on_either_path(
    site: Serve, postgres: PG, one_hop: str
) -> None:
    env = {"CONN_MAX_AGE": "60", "ASGI_THREAD_POOL_MAX": "1", "ASGI_ONE_HOP": one_hop}
    with site(**env) as (srv, app_name), httpx.Client() as c:
        stats = c.get(srv.url + "/stats/").json()
        assert (stats["requests_path"] == ONE_HOP) is (one_hop == "1")
        results = [c.get(f"{srv.url}/{'db' if i % 2 else 'adb'}/?n={i}").json() for i in range(40)]
        assert [r["n"] for r in results] == list(range(40))
        assert len({r["pid"] for r in results}) == 1  # one thread, one connection
        assert all(r["middleware_thread"] == r["thread"] for r in results)
        assert postgres.count(app_name) == 1


@pytest.mark.parametrize("how", ["atomic", "begin", "app-name"])
def test_a_connection_left_dirty_is_reset_before_the_next_one_hop_request(
    site: Serve, how: str
) -> None:
    env = {"CONN_MAX_AGE": "60", "ASGI_THREAD_POOL_MAX": "1"}
    with site(**env) as (srv, _), httpx.Client() as c:
        assert c.get(srv.url + "/stats/").json()["requests_path"] == ONE_HOP
        before = c.get(srv.url + "/db-state/").json()
        assert c.get(f"{srv.url}/dirty/{how}/").text == how
        after = c.get(srv.url + "/db-state/").json()
    assert after["thread"] == before["thread"]  # the bound is 1: the same thread
    assert after["open_transaction"] is False
    assert after["in_atomic_block"] is False
    assert after["autocommit"] is True
    assert after["application_name"] == before["application_name"]
    assert after["pid"] != before["pid"]  # reset: a fresh connection


def test_the_thread_bound_holds_under_concurrent_one_hop_requests(
    site: Serve, postgres: PG
) -> None:
    async def burst(url: str) -> list[dict[str, Any]]:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
        async with httpx.AsyncClient(limits=limits, timeout=60) as c:
            responses = await asyncio.gather(
                *(c.get(f"{url}/{'db' if i % 2 else 'adb'}/?n={i}") for i in range(200))
            )
        return [r.json() for r in responses]

    env = {"CONN_MAX_AGE": "60", "ASGI_THREAD_POOL_MAX": "3", "ASGI_THREAD_POOL_IDLE": "3"}
    with site(**env) as (srv, app_name):
        assert httpx.get(srv.url + "/stats/").json()["requests_path"] == ONE_HOP
        results = asyncio.run(burst(srv.url))
        assert [r["n"] for r in results] == list(range(200))
        assert all(r["middleware_thread"] == r["thread"] for r in results)
        assert len({r["thread"] for r in results}) <= 3
        stats = httpx.get(srv.url + "/stats/").json()
        assert stats["pool_started"] <= 3
        assert postgres.count(app_name) <= 3


def test_signals_fire_once_per_one_hop_request_under_a_real_server(site: Serve) -> None:
    """request_finished fires before a one-hop response is sent: once the client has a
    response, its request has finished, so the counts need no wait."""
    with site() as (srv, _), httpx.Client() as c:
        base = c.get(srv.url + "/stats/").json()
        assert base["requests_path"] == ONE_HOP
        for i in range(10):
            c.get(f"{srv.url}/{'db' if i % 2 else 'adb'}/?n={i}")
        now = c.get(srv.url + "/stats/").json()["signals"]
    # Each stats request reads the counters between its own two signals.
    assert now["started"] - base["signals"]["started"] == 11
    assert now["finished"] - base["signals"]["finished"] == 11
