"""Faults under a real server: disconnects, shutdown with requests in flight, the database
going away. Each fault has an expected outcome, and the server must stay clean."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable

import httpx

from tests.conftest import PG
from tests.reliability.conftest import proc_status
from tests.servers import Server, serve, stop, wait_for


def raw(server: Server, request: bytes, then: Callable[[socket.socket], None]) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(request)
        then(s)


def established(port: int) -> int:
    """Established TCP connections to ``port`` on 127.0.0.1, from /proc/net/tcp."""
    local = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return sum(1 for row in rows if row[1] == local and row[3] == "01")


def settle(server: Server, baseline: dict[str, int], timeout: float = 10.0) -> dict[str, int]:
    """Wait until threads and fds are back near the baseline; returns the last reading."""
    deadline = time.monotonic() + timeout
    while True:
        now = proc_status(server.process.pid)
        ok = now["Threads"] <= baseline["Threads"] + 8 and now["fds"] <= baseline["fds"] + 2
        if ok or time.monotonic() > deadline:
            return now
        time.sleep(0.1)


def test_client_disconnects_leave_nothing_behind(example_server: Server) -> None:
    for _ in range(3):
        assert httpx.get(example_server.url + "/api/hello/").status_code == 200
    baseline = proc_status(example_server.process.pid)

    def close_now(s: socket.socket) -> None:
        pass

    def read_a_little(s: socket.socket) -> None:
        s.recv(64)

    def wait_then_close(s: socket.socket) -> None:
        time.sleep(0.2)

    for _ in range(5):
        # Before the body: headers promise 1000 bytes, the client hangs up.
        raw(
            example_server,
            b"POST /api/hello/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\nabc",
            close_now,
        )
        # Mid-stream: the first chunk arrives, then the client is gone.
        raw(example_server, b"GET /api/stream/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", read_a_little)
        # During a slow view.
        raw(
            example_server,
            b"GET /api/slow/?s=2 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            wait_then_close,
        )

    def timing_lines(what: str) -> list[str]:
        return [x for x in example_server.log().splitlines() if f"timing: {what}" in x]

    # Each request's timing line is written when it ends: the slow views end 2 s after
    # they started, later on a loaded host. Wait for all 15, bounded, not a fixed time.
    wanted = ("GET /api/stream/", "GET /api/slow/", "POST /api/hello/")
    wait_for(lambda: all(len(timing_lines(w)) >= 5 for w in wanted), 60)
    after = settle(example_server, baseline)
    assert after["Threads"] <= baseline["Threads"] + 8, (baseline, after)
    assert after["fds"] <= baseline["fds"] + 2, (baseline, after)
    # The server still answers, and nothing escaped as a traceback.
    assert httpx.get(example_server.url + "/api/hello/").status_code == 200
    log = example_server.log()
    assert "Traceback" not in log, log
    # The timing layer recorded each disconnect as such (one log line per request).
    stream_lines = [x for x in log.splitlines() if "middleware_stack.timing: GET /api/stream/" in x]
    slow_lines = [x for x in log.splitlines() if "middleware_stack.timing: GET /api/slow/" in x]
    post_lines = [x for x in log.splitlines() if "middleware_stack.timing: POST /api/hello/" in x]
    assert len(stream_lines) == len(slow_lines) == len(post_lines) == 5, log
    assert all(x.endswith(" disconnected") for x in slow_lines + post_lines), log
    assert all(x.endswith(" disconnected") for x in stream_lines), log


def test_shutdown_with_requests_in_flight_is_clean(example_pg: tuple[PG, dict[str, str]]) -> None:
    _, env = example_pg
    args = ("--timeout-graceful-shutdown", "1")
    with serve(
        "uvicorn", "example_project.asgi:application", env=env, ready_path="/api/hello/", args=args
    ) as srv:
        results: list[object] = []

        def slow() -> None:
            try:
                results.append(httpx.get(srv.url + "/api/slow/?s=10", timeout=20).status_code)
            except httpx.HTTPError as exc:
                results.append(type(exc).__name__)

        clients = [threading.Thread(target=slow) for _ in range(4)]
        for c in clients:
            c.start()
        # Connected, then one more request answered: the server's loop has read theirs.
        deadline = time.monotonic() + 30
        while established(srv.port) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert httpx.get(srv.url + "/api/hello/", timeout=20).status_code == 200
        started = time.monotonic()
        code = stop(srv, timeout=20)
        took = time.monotonic() - started
        for c in clients:
            c.join(20)
        log = srv.log()
    assert code in (0, -15), log
    assert took < 10, "the server waited for the slow views instead of cancelling them"
    assert "Waiting for application shutdown." in log
    assert "Application shutdown complete." in log
    # uvicorn cancels the requests and sends lifespan.shutdown in the same loop turn. A
    # cancelled request may need several turns to unwind (Django 6.1's handler awaits its
    # task group), so the boundary's shutdown waits for them: each one unwound, and was
    # recorded by the timing layer, before the application shutdown completed.
    cancelled = re.search(r"Cancel (\d+) running task", log)
    assert cancelled and int(cancelled[1]) >= 1, log
    before_exit = log[: log.index("Application shutdown complete.")]
    unwound = re.findall(r"middleware_stack\.timing: GET /api/slow/.*", before_exit)
    assert len(unwound) == int(cancelled[1]), log
    # uvicorn logs each task it cancels as "Exception in ASGI application" with a
    # CancelledError traceback, and Django 5 leaves its disconnect listener's
    # RequestAborted unretrieved; both happen with bare Django too. Nothing else may appear.
    final_lines = re.findall(r"^([\w.]+(?:Error|Exception|Aborted)\b.*)$", log, re.MULTILINE)
    assert final_lines  # the cancellations were logged, so this check is not vacuous
    allowed = ("asyncio.exceptions.CancelledError", "django.core.exceptions.RequestAborted")
    assert all(line.startswith(allowed) for line in final_lines), log
    assert "middleware_stack" not in "".join(final_lines)
    assert len(results) == 4  # every client got an answer or a clean connection close


def test_database_going_away_fails_normally_then_recovers(
    example_server: Server, example_pg: tuple[PG, dict[str, str]]
) -> None:
    postgres, _ = example_pg
    url = example_server.url + "/api/db/"
    with httpx.Client(timeout=30) as c:
        assert all(c.get(url).status_code == 200 for _ in range(10))
        postgres.stop()
        try:
            down = [c.get(url).status_code for _ in range(5)]
        finally:
            postgres.start()
        # Django's normal error: an OperationalError becomes a plain 500 page.
        assert down == [500] * 5
        # Recovered: every pooled thread reconnects (CONN_HEALTH_CHECKS), none is poisoned.
        after = [c.get(url).status_code for _ in range(20)]
    assert after == [200] * 20, after

    async def burst() -> list[int]:
        async with httpx.AsyncClient(timeout=30) as ac:
            responses = await asyncio.gather(*(ac.get(url) for _ in range(30)))
        return [r.status_code for r in responses]

    import asyncio

    assert asyncio.run(burst()) == [200] * 30
