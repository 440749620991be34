"""A sync bearer ``verify`` that uses the database, checked concurrently on real PostgreSQL
behind uvicorn (issue 15, item 8): checks run side by side on pooled workers, and
``CONN_MAX_AGE`` still governs the connections they open."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import PG
from tests.test_threads_pg import Serve, site, wait_for

__all__ = ["site"]  # the fixture, shared with the thread-reuse tests

pytestmark = [pytest.mark.server, pytest.mark.postgres]


async def burst(url: str, n: int) -> list[int]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=60) as c:
        good = {"authorization": "Bearer good"}
        responses = await asyncio.gather(
            *(c.get(f"{url}/db/?n={i}", headers=good) for i in range(n))
        )
    return [r.status_code for r in responses]


@pytest.mark.parametrize("max_age", ["0", "60"])
def test_concurrent_orm_verify_calls_keep_conn_max_age(
    site: Serve, postgres: PG, max_age: str
) -> None:
    with site(CONN_MAX_AGE=max_age, PG_BEARER="1", ASGI_THREAD_POOL_IDLE="4") as (srv, app):
        assert asyncio.run(burst(srv.url, 40)) == [200] * 40
        bad = httpx.get(f"{srv.url}/db/?n=1", headers={"authorization": "Bearer bad"})
        assert bad.status_code == 401
        if max_age == "0":
            # Every connection a verify opened, on whichever worker, is closed again.
            assert wait_for(lambda: postgres.count(app) == 0), postgres.count(app)
        else:
            # Kept for reuse, but bounded by the idle workers (4 for requests, 4 for
            # verify calls), not by the 40 concurrent checks.
            assert wait_for(lambda: postgres.count(app) <= 8, 20), postgres.count(app)
        assert "Traceback" not in srv.log()
