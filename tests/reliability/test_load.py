"""The example project with the full stack under sustained mixed load from wrk.

50,000 requests (500,000 with --soak) at concurrency 64, on loopback only.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from middleware_stack.settings import DEFAULT_THREAD_POOL_IDLE_TIMEOUT
from tests.conftest import PG, need_tool
from tests.reliability.conftest import ORIGIN, proc_status
from tests.servers import Server

LUA = Path(__file__).with_name("mix.lua")
#: Long enough for the pool to retire idle threads above its bound (the example keeps
#: the default ASGI_THREAD_POOL_IDLE_TIMEOUT).
SETTLE = DEFAULT_THREAD_POOL_IDLE_TIMEOUT + 1.5
RESULTS = Path(os.environ.get("RELIABILITY_RESULTS", "/tmp/middleware_stack-reliability.json"))


def wrk(url: str, limit: int, connections: int = 64) -> dict[str, Any]:
    """Run wrk until ``limit`` responses; returns the counts printed by mix.lua."""
    binary = need_tool("wrk", "the load generator (Debian package wrk)")
    duration = max(60, limit // 100)  # an upper bound; the script stops at the limit
    with tempfile.TemporaryDirectory() as tmp:
        done_file = Path(tmp) / "done"
        proc = subprocess.Popen(
            [
                binary,
                "-t1",
                f"-c{connections}",
                f"-d{duration}s",
                "--timeout",
                "10s",
                "-s",
                str(LUA),
                url,
            ],
            env={
                **os.environ,
                "WRK_LIMIT": str(limit),
                "WRK_ORIGIN": ORIGIN,
                "WRK_DONE_FILE": str(done_file),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + duration + 30
        while proc.poll() is None and not done_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)  # wakes wrk's main thread: join, then done()
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    return result


async def check_sample(url: str, rounds: int) -> list[str]:
    """Correctness of a sample of responses while the load runs: bodies and headers."""
    problems: list[str] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        for i in range(rounds):
            r = await c.get("/api/hello/", headers={"Origin": ORIGIN})
            if r.json() != {"hello": "world", "path": "/api/hello/"}:
                problems.append(f"hello body {r.text!r}")
            if r.headers.get("access-control-allow-origin") != ORIGIN:
                problems.append(f"hello ACAO {r.headers!r}")
            if "server-timing" not in r.headers:
                problems.append("hello without server-timing")
            user = f"sample-{i % 7}"
            r = await c.get("/api/whoami/", headers={"X-Forwarded-User": user})
            if r.json().get("identity") != user:
                problems.append(f"whoami {user} -> {r.text!r}")
            r = await c.get("/api/stream/")
            if r.text != "".join(f"chunk {n}\n" for n in range(5)):
                problems.append(f"stream body {r.text!r}")
            r = await c.options(
                "/api/hello/",
                headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
            )
            if r.status_code != 204 or r.headers.get("access-control-allow-origin") != ORIGIN:
                problems.append(f"preflight {r.status_code} {r.headers!r}")
            r = await c.get("/api/fail/", headers={"Origin": ORIGIN})
            if r.status_code != 500 or r.headers.get("access-control-allow-origin") != ORIGIN:
                problems.append(f"fail {r.status_code} {r.headers!r}")
    return problems


def test_mixed_load_has_no_errors_no_leaks_and_correct_responses(
    example_server: Server, example_pg: tuple[PG, dict[str, str]], soak: bool
) -> None:
    postgres, env = example_pg
    url = example_server.url
    pid = example_server.process.pid
    total = 500_000 if soak else 50_000
    first = total // 5

    wrk(url, 2_000)  # warm up: pool threads, DB connections, caches
    time.sleep(SETTLE)  # threads above the pool's idle bound retire after its idle timeout
    before = proc_status(pid)

    sample_problems: list[str] = []
    sampler = threading.Thread(
        target=lambda: sample_problems.extend(asyncio.run(check_sample(url, 40))), daemon=True
    )
    sampler.start()
    phase1 = wrk(url, first)
    at_10k = proc_status(pid)
    db_at_10k = postgres.count(env["EXAMPLE_PG_APP"])
    phase2 = wrk(url, total - first)
    sampler.join(120)
    time.sleep(SETTLE)  # let the pool retire threads above its idle bound
    at_50k = proc_status(pid)
    db_at_50k = postgres.count(env["EXAMPLE_PG_APP"])

    figures = {
        "requests": phase1["responses"] + phase2["responses"],
        "phases": [phase1, phase2],
        "rss_kb": {"before": before["VmRSS"], "at_10k": at_10k["VmRSS"], "at_50k": at_50k["VmRSS"]},
        "threads": {
            "before": before["Threads"],
            "at_10k": at_10k["Threads"],
            "at_50k": at_50k["Threads"],
        },
        "fds": {"before": before["fds"], "at_10k": at_10k["fds"], "at_50k": at_50k["fds"]},
        "db_connections": {"at_10k": db_at_10k, "at_50k": db_at_50k},
        "sample_problems": sample_problems,
    }
    RESULTS.write_text(json.dumps(figures, indent=2))
    print("\nRELIABILITY", json.dumps(figures))

    for phase in (phase1, phase2):
        assert phase["connect"] == phase["read"] == phase["write"] == phase["timeout"] == 0, phase
        assert phase["sother"] == 0
        # The mix is 4 successes : 1 404 : 1 500 (round robin; a few in flight at the stop).
        n = phase["responses"]
        assert abs(phase["s4xx"] - n / 6) <= 70 and abs(phase["s5xx"] - n / 6) <= 70, phase
    assert figures["requests"] >= total
    assert not sample_problems, sample_problems[:5]
    assert at_50k["VmRSS"] - at_10k["VmRSS"] <= 5 * 1024, figures["rss_kb"]
    # Threads: the pool's idle bound (8) above the idle baseline; nothing per request.
    assert at_50k["Threads"] <= before["Threads"] + 8, figures["threads"]
    assert at_50k["fds"] <= before["fds"] + 2, figures["fds"]
    assert db_at_50k <= max(db_at_10k, 8), figures["db_connections"]


@pytest.mark.parametrize("n", [1])
def test_wrk_script_counts_statuses(example_server: Server, n: int) -> None:
    """The load generator itself: a tiny run whose counts can be checked exactly."""
    result = wrk(example_server.url, 12, connections=1)
    assert result["responses"] == 12
    assert (result["s2xx"], result["s4xx"], result["s5xx"]) == (8, 2, 2)
