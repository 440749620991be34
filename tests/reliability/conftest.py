"""Fixtures for the reliability suite: the example project on PostgreSQL under uvicorn."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PG
from tests.servers import ROOT, Server, serve

ORIGIN = "http://localhost:5173"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.reliability)


@pytest.fixture(scope="session")
def soak(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--soak"))


def proc_status(pid: int) -> dict[str, int]:
    """RSS (kB), thread count and open file descriptors of a process, from /proc."""
    fields: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "Threads"):
                fields[key] = int(value.split()[0])
    fields["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return fields


@pytest.fixture(scope="module")
def example_pg(postgres: PG) -> Iterator[tuple[PG, dict[str, str]]]:
    """A fresh database for the example, migrated; yields the env to serve it with."""
    db = f"example_{uuid.uuid4().hex[:8]}"
    with postgres.connect() as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    env = {
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "DJANGO_DEBUG": "0",
        "EXAMPLE_PG_PORT": str(postgres.port),
        "EXAMPLE_PG_DB": db,
        "EXAMPLE_PG_APP": f"app_{db}",
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"],
        cwd=ROOT / "example",
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        check=True,
        timeout=180,
    )
    yield postgres, env


@pytest.fixture
def example_server(example_pg: tuple[PG, dict[str, str]]) -> Iterator[Server]:
    _, env = example_pg
    with serve(
        "uvicorn", "example_project.asgi:application", env=env, ready_path="/api/hello/"
    ) as srv:
        yield srv
