"""Thread reuse against a real PostgreSQL, served by uvicorn on loopback."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest

from tests.conftest import PG
from tests.servers import Server, serve_pg_site, wait_for

pytestmark = [pytest.mark.server, pytest.mark.postgres]

Serve = Callable[..., AbstractContextManager[tuple[Server, str]]]


@pytest.fixture
def site(postgres: PG) -> Serve:
    return functools.partial(serve_pg_site, postgres.port)


def test_persistent_connections_follow_the_pool_not_the_requests(site: Serve, postgres: PG) -> None:
    with site(CONN_MAX_AGE="60", ASGI_THREAD_POOL_IDLE="4") as (srv, app_name), httpx.Client() as c:
        pids = set()
        for i in range(200):
            path = "/db/" if i % 2 else "/adb/"
            data = c.get(f"{srv.url}{path}?n={i}").json()
            assert data["n"] == i
            pids.add(data["pid"])
        stats = c.get(srv.url + "/stats/").json()
        # Sequential requests reuse one pooled thread, and so one connection.
        assert len(pids) <= stats["pool_live"] <= 4
        assert postgres.count(app_name) <= stats["pool_live"]
        assert stats["pool_started"] == stats["pool_live"]


def test_conn_max_age_zero_closes_the_connection_after_each_request(
    site: Serve, postgres: PG
) -> None:
    with site(CONN_MAX_AGE="0") as (srv, app_name), httpx.Client() as c:
        pids = [c.get(f"{srv.url}/db/?n={i}").json()["pid"] for i in range(20)]
        assert len(set(pids)) == 20  # a new backend every request
        assert wait_for(lambda: postgres.count(app_name) == 0, 10)


def test_a_sync_bearer_verify_using_the_database_keeps_conn_max_age_zero(
    site: Serve, postgres: PG
) -> None:
    # verify runs before Django's request (on asgiref's thread), where no request signal
    # closes its connection; the backend closes it itself.
    with site(CONN_MAX_AGE="0", PG_BEARER="1") as (srv, app_name), httpx.Client() as c:
        good = {"authorization": "Bearer good"}
        for i in range(5):
            assert c.get(f"{srv.url}/db/?n={i}", headers=good).status_code == 200
        assert (
            c.get(f"{srv.url}/db/?n=9", headers={"authorization": "Bearer bad"}).status_code == 401
        )
        assert wait_for(lambda: postgres.count(app_name) == 0, 10), postgres.count(app_name)


def test_500_concurrent_requests_complete_and_threads_return_to_the_bound(
    site: Serve, postgres: PG
) -> None:
    async def burst(url: str) -> list[dict[str, Any]]:
        limits = httpx.Limits(max_connections=500, max_keepalive_connections=0)
        async with httpx.AsyncClient(limits=limits, timeout=60) as c:
            responses = await asyncio.gather(
                *(c.get(f"{url}/{'db' if i % 2 else 'adb'}/?n={i}") for i in range(500))
            )
        return [r.json() for r in responses]

    with site(CONN_MAX_AGE="0", ASGI_THREAD_POOL_IDLE="4") as (srv, app_name):
        before = httpx.get(srv.url + "/stats/").json()
        results = asyncio.run(burst(srv.url))
        assert [r["n"] for r in results] == list(range(500))
        # Sync middleware and the view ran on the same thread in every request.
        assert all(r["middleware_thread"] == r["thread"] for r in results)

        def settled() -> bool:
            s = httpx.get(srv.url + "/stats/").json()
            return bool(s["pool_live"] <= 4 and s["active_threads"] <= before["active_threads"] + 4)

        assert wait_for(settled, 20), httpx.get(srv.url + "/stats/").json()
        assert wait_for(lambda: postgres.count(app_name) == 0, 10)


@pytest.mark.parametrize("atomic_requests", ["0", "1"])
def test_failed_transaction_leaves_nothing_open_on_the_reused_thread(
    site: Serve, atomic_requests: str
) -> None:
    env = {"CONN_MAX_AGE": "60", "ASGI_THREAD_POOL_IDLE": "1", "ATOMIC_REQUESTS": atomic_requests}
    with site(**env) as (srv, _), httpx.Client() as c:
        first = c.get(srv.url + "/tx-state/").json()
        time.sleep(0.5)  # its thread back in the pool, alone: the failing request gets it
        assert c.get(srv.url + "/fail-tx/").status_code == 500
        # The failed request may still be finishing (Django closes the response after
        # sending it). Give it time to hand its thread back: the pool is LIFO and keeps
        # an extra thread for its idle timeout, so a request started meanwhile would put
        # a second thread on top for the rest of this test. Then ask until the failed
        # request's thread answers, checking every answer on the way.
        time.sleep(0.5)
        seen = []
        for _ in range(50):
            after = c.get(srv.url + "/tx-state/").json()
            seen.append(after)
            if after["thread"] == first["thread"]:
                break
            time.sleep(0.05)
        assert seen[-1]["thread"] == first["thread"]  # the same pooled thread was reused
        for after in seen:
            assert after["half_done_rows"] == 0  # rolled back
            assert after["no_txid"] is True  # no transaction left open on the connection
            assert after["autocommit"] is (atomic_requests == "0")
            assert after["in_atomic_block"] is (atomic_requests == "1")


def test_signals_fire_once_per_request_under_a_real_server(site: Serve) -> None:
    with site() as (srv, _), httpx.Client() as c:
        base = c.get(srv.url + "/stats/").json()["signals"]
        for i in range(10):
            c.get(f"{srv.url}/db/?n={i}")
        # A stats request reads the counters while it has started but not finished: the
        # j-th one after ``base`` sees 10 + j starts, and 10 + j finishes once every
        # earlier request has finished (a streamed or late one may still be closing, so
        # ask again, bounded, rather than sleep a fixed time). More than that is a double.
        for j in range(1, 101):
            now = c.get(srv.url + "/stats/").json()["signals"]
            if now["finished"] - base["finished"] >= 10 + j:
                break
            time.sleep(0.1)
    assert now["started"] - base["started"] == 10 + j
    assert now["finished"] - base["finished"] == 10 + j


def test_requests_run_beside_a_view_blocked_in_a_query_under_a_real_server(site: Serve) -> None:
    """The hop queue (middleware_stack.hopqueue) never holds requests behind a hop that
    waits on the database: the process is idle, so they take threads of their own."""
    with site() as (srv, _), httpx.Client(timeout=60) as c:
        assert "one-hop" in c.get(srv.url + "/stats/").json()["requests_path"]

        async def run() -> tuple[float, list[float]]:
            async with httpx.AsyncClient(timeout=60) as ac:
                slow = asyncio.ensure_future(ac.get(f"{srv.url}/sleep/?s=4"))
                await asyncio.sleep(0.5)  # the slow view is in its query now
                quick = []
                for i in range(10):
                    assert (await ac.get(f"{srv.url}/db/?n={i}")).status_code == 200
                    quick.append(time.monotonic())
                assert (await slow).status_code == 200
                return time.monotonic(), quick

        slow_done, quick_done = asyncio.run(run())
        # All ten were answered while the slow one still waited in PostgreSQL.
        assert max(quick_done) < slow_done - 1.0
