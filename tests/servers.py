"""Start real ASGI servers on loopback for end-to-end tests.

Each server runs as a subprocess with its output in a log file, so a test can assert
that no traceback (and no "lifespan unsupported" line) was printed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def command(
    server: str, app: str, port: int, host: str = "127.0.0.1", python: str | None = None
) -> list[str]:
    py = python or sys.executable
    if server == "uvicorn":
        return [py, "-m", "uvicorn", app, "--host", host, "--port", str(port), "--lifespan", "on"]
    if server == "hypercorn":
        return [py, "-m", "hypercorn", app, "--bind", f"{host}:{port}"]
    if server == "daphne":
        return [py, "-m", "daphne", "-b", host, "-p", str(port), app]
    if server == "granian":
        return [
            py, "-m", "granian", "--interface", "asgi", "--host", host, "--port", str(port), app,
        ]  # fmt: skip
    if server == "gunicorn":
        return [
            py, "-m", "gunicorn", app, "-k", "uvicorn.workers.UvicornWorker",
            "-b", f"{host}:{port}", "-w", "2",
        ]  # fmt: skip
    raise ValueError(server)


@contextmanager
def serve(
    server: str,
    app: str,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    host: str = "127.0.0.1",
    ready_path: str = "/",
    timeout: float = 30.0,
    args: tuple[str, ...] = (),
    python: str | None = None,
) -> Iterator[Server]:
    """Run ``server`` with ``app`` until the block ends; waits until it answers.

    ``python``: the interpreter to run it with (another virtualenv's); the test's own by
    default.
    """
    port = free_port()
    log_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - kept open for the server
        prefix=f"{server}-", suffix=".log", delete=False
    )
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "example")])}
    full_env.update(env or {})
    proc = subprocess.Popen(
        [*command(server, app, port, host, python), *args],
        cwd=str(cwd or ROOT),
        env=full_env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    srv = Server(server, port, proc, Path(log_file.name), host)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{server} exited with {proc.returncode}:\n{srv.log()}")
            try:
                httpx.get(srv.url + ready_path, timeout=1.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{server} did not answer in {timeout}s:\n{srv.log()}"
                    ) from None
                time.sleep(0.1)
        yield srv
    finally:
        stop(srv)


def stop(srv: Server, timeout: float = 15.0) -> int | None:
    """SIGTERM (a graceful shutdown, running lifespan shutdown); SIGKILL if it hangs."""
    if srv.process.poll() is None:
        os.killpg(srv.process.pid, signal.SIGTERM)
        try:
            srv.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(srv.process.pid, signal.SIGKILL)
            srv.process.wait()
    return srv.process.returncode


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass (a server in another
    process has no event to wait on); its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@contextmanager
def serve_pg_site(pg_port: int, **env: str) -> Iterator[tuple[Server, str]]:
    """uvicorn serving ``tests.pg_site`` on the PostgreSQL at ``pg_port``, under a fresh
    ``application_name`` (yielded with the server), so its connections can be counted."""
    app_name = f"ms_{uuid.uuid4().hex[:8]}"
    full = {
        "DJANGO_SETTINGS_MODULE": "tests.pg_site.settings",
        "PG_PORT": str(pg_port),
        "PG_APP_NAME": app_name,
        **env,
    }
    with serve("uvicorn", "tests.pg_site.asgi:application", env=full, ready_path="/stats/") as srv:
        yield srv, app_name
