"""Slow clients through uvicorn: bodies that trickle in hold no OS thread, and the
worker threads never exceed ASGI_THREAD_POOL_MAX (issue 15, item 14)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx

from tests.reliability.conftest import proc_status
from tests.servers import serve, wait_for

CLIENTS = 300
BODY = 100
MAX = 4


def read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_slow_request_bodies_hold_no_thread_and_threads_stay_under_the_bound(
    tmp_path: Path,
) -> None:
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.pg_site.settings",
        "SQLITE_PATH": str(tmp_path / "site.sqlite3"),
        "ASGI_THREAD_POOL_MAX": str(MAX),
    }
    with serve("uvicorn", "tests.pg_site.asgi:application", env=env, ready_path="/stats/") as srv:
        pid = srv.process.pid
        base = proc_status(pid)
        head = (
            f"POST /slow-body/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {BODY}\r\n"
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        socks = []
        try:
            for _ in range(CLIENTS):
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
                s.sendall(head + b"x" * 10)  # a tenth of the body, the rest later
                socks.append(s)
            # Every connection accepted and its request begun (uvicorn reads the headers
            # and the first chunk as they come): only then is the count meaningful. (The
            # baseline may include the readiness probe's connection, closing meanwhile.)
            assert wait_for(lambda: proc_status(pid)["fds"] >= base["fds"] + CLIENTS - 2)
            waiting = proc_status(pid)
            assert waiting["Threads"] <= base["Threads"] + MAX, (base, waiting)

            peak = [0]
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], proc_status(pid)["Threads"])
                    time.sleep(0.01)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            for s in socks:
                s.sendall(b"y" * (BODY - 10))
            answers = [read_response(s) for s in socks]
            done.set()
            sampler.join(10)
        finally:
            for s in socks:
                s.close()
        assert all(a.startswith(b"HTTP/1.1 200") for a in answers), answers[0][:200]
        assert all(f'"size": {BODY}'.encode() in a for a in answers)
        stats = httpx.get(srv.url + "/stats/").json()
    # At most MAX worker threads ever existed; the other requests waited for one.
    assert stats["pool_max"] == MAX and stats["pool_started"] <= MAX, stats
    assert peak[0] <= base["Threads"] + MAX, (base, peak)
