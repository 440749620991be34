from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak",
        action="store_true",
        help="reliability suite: a long soak (10x the load) for release checks",
    )


def need_tool(path_or_name: str, why: str) -> str:
    """Return the tool's path; skip with a reason locally, fail under CI=true."""
    found = shutil.which(path_or_name) or (path_or_name if os.path.exists(path_or_name) else None)
    if found:
        return found
    message = f"{path_or_name} is not installed: {why}"
    if IN_CI:
        pytest.fail(message + " (CI=true: .ci/run must install it)")
    pytest.skip(message)
    raise AssertionError("unreachable")


# -- a throwaway PostgreSQL ------------------------------------------------------------


class PG:
    def __init__(self, host: str, port: int, socket_dir: str, pg_ctl: list[str]) -> None:
        self.host = host
        self.port = port
        self.socket_dir = socket_dir
        self._pg_ctl = pg_ctl  # the pg_ctl command line, up to the action

    def stop(self) -> None:
        """Stop the server now (``-m fast``: open connections are terminated)."""
        subprocess.run([*self._pg_ctl, "-m", "fast", "-w", "stop"], check=True, capture_output=True)

    def start(self) -> None:
        subprocess.run([*self._pg_ctl, "-w", "start"], check=True, capture_output=True)

    def connect(self) -> Any:
        import psycopg

        return psycopg.connect(
            host=self.host, port=self.port, user="postgres", dbname="postgres", autocommit=True
        )

    def count(self, application_name: str) -> int:
        with self.connect() as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                [application_name],
            ).fetchone()
        return int(row[0]) if row else 0


def _pg_bin() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if found:
        return found[-1]
    need_tool("/usr/lib/postgresql/<version>/bin/initdb", "Debian's postgresql package")
    raise AssertionError("unreachable")


def _as_postgres(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; drop to the postgres user when we are root.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="session")
def postgres() -> Iterator[PG]:
    """A PostgreSQL server on 127.0.0.1 with a throwaway data dir, for the whole session."""
    from tests.servers import free_port

    pgbin = _pg_bin()
    base = tempfile.mkdtemp(prefix="ms-pg-")
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    data = os.path.join(base, "data")
    port = free_port()
    subprocess.run(
        _as_postgres([f"{pgbin}/initdb", "-D", data, "-A", "trust", "-U", "postgres"]),
        check=True,
        capture_output=True,
    )
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c max_connections=700 -c fsync=off"
    pg_ctl = _as_postgres([f"{pgbin}/pg_ctl", "-D", data, "-o", opts, "-l", f"{base}/log"])
    pg = PG("127.0.0.1", port, base, pg_ctl)
    pg.start()
    try:
        yield pg
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
