"""The test client inside TestCase, TransactionTestCase and pytest-django's db fixtures.

tests/client_db_cases.py is run in a pytest subprocess: on SQLite, and on a real
PostgreSQL, where a view on another thread would use another connection and not see
the test's uncommitted rows (nor roll its writes back with the test).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import PG

CASES = "tests/client_db_cases.py"
EXPECTED = "8 passed"


def run_cases(settings: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            "--ds",
            settings,
            CASES,
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_database_cases_on_sqlite() -> None:
    result = run_cases("tests.settings")
    assert EXPECTED in result.stdout, result.stdout + result.stderr


@pytest.mark.postgres
def test_database_cases_on_postgresql(postgres: PG) -> None:
    result = run_cases("tests.client_pg_settings", PG_PORT=str(postgres.port))
    assert EXPECTED in result.stdout, result.stdout + result.stderr
