"""Concurrency correctness: many requests at once, each must get its own identity, CORS
decision and timing; no state may leak between requests (contextvars, shared buffers,
instance attributes)."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import httpx

from middleware_stack import build_stack
from middleware_stack.contrib.timing import TimingRecord, record
from middleware_stack.types import Receive, Scope, Send
from tests.asgi import call
from tests.servers import Server

N = 1000


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Yields to the loop a random number of times, so requests interleave."""
    i = int(scope["path"].rsplit("/", 1)[1])
    for _ in range(random.randint(0, 5)):
        await asyncio.sleep(0)
    record(f"req{i}", 1.0)
    auth = scope.get("auth")
    body = json.dumps({"i": i, "identity": getattr(auth, "identity", None)}).encode()
    for _ in range(random.randint(0, 3)):
        await asyncio.sleep(0)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def test_a_thousand_concurrent_requests_each_get_their_own_answer() -> None:
    records: list[TimingRecord] = []
    origins = [f"https://t{i}.example.com" for i in range(N)]
    stack = build_stack(
        echo,
        [
            ("middleware_stack.contrib.timing.TimingMiddleware", {"on_record": [records.append]}),
            (
                "middleware_stack.contrib.cors.CORSMiddleware",
                {"allow_origins": origins[::2], "allow_credentials": True},
            ),
            (
                "middleware_stack.contrib.auth.AuthPassthroughMiddleware",
                {
                    "backends": [
                        (
                            "middleware_stack.contrib.auth.TrustedHeaderBackend",
                            {"trusted_proxies": ["10.0.0.0/8"]},
                        )
                    ]
                },
            ),
        ],
        checks="off",
    )

    async def one(i: int) -> tuple[int, Any]:
        # Every third client is outside the trusted network: its header must not count.
        client = (f"10.0.{i // 256}.{i % 256}", 1234) if i % 3 else ("192.0.2.1", 1234)
        headers = [("origin", origins[i]), ("x-forwarded-user", f"user-{i}")]
        return i, await call(stack, "GET", f"/items/{i}", headers, client=client)

    results = await asyncio.gather(*(one(i) for i in range(N)))
    for i, response in results:
        data = json.loads(response.body)
        assert data["i"] == i
        assert data["identity"] == (f"user-{i}" if i % 3 else None)
        expected_acao = origins[i] if i % 2 == 0 else None
        assert response.header("access-control-allow-origin") == expected_acao
        timing = response.header("server-timing") or ""
        assert f"req{i};" in timing
        assert timing.count("req") == 1, timing  # no other request's metric leaked in
    assert len(records) == N
    by_path = {r.path: r for r in records}
    assert len(by_path) == N
    for i in range(N):
        rec = by_path[f"/items/{i}"]
        assert [m[0] for m in rec.metrics] == [f"req{i}"]
        assert rec.status == 200


def test_concurrent_identities_through_a_real_server(example_server: Server) -> None:
    async def burst() -> list[tuple[int, dict[str, Any]]]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=example_server.url, limits=limits, timeout=60) as c:

            async def one(i: int) -> tuple[int, dict[str, Any]]:
                r = await c.get("/api/whoami/", headers={"X-Forwarded-User": f"conc-{i % 50}"})
                assert r.status_code == 200, r.text
                return i, r.json()

            return await asyncio.gather(*(one(i) for i in range(300)))

    for i, data in asyncio.run(burst()):
        assert data["identity"] == f"conc-{i % 50}"
        assert data["user"] == f"conc-{i % 50}"  # request.user, resolved per request
