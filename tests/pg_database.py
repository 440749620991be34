"""The throwaway PostgreSQL (``postgres`` in tests/conftest.py) as a ``DATABASES`` entry.

The settings modules of the served sites and of the subprocess test runs read its port
from ``PG_PORT``, as the tests that start them set it.
"""

from __future__ import annotations

import os
from typing import Any


def pg_database(**extra: Any) -> dict[str, Any]:
    """``DATABASES["default"]`` on the test PostgreSQL, with ``extra`` keys added."""
    return {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": "127.0.0.1",
        "PORT": os.environ.get("PG_PORT", "5432"),
        "USER": "postgres",
        "NAME": "postgres",
        **extra,
    }
