"""The example's settings, with a lifespan whose startup fails."""

from example_project.settings import *  # noqa: F403

ASGI_LIFESPAN = "tests.failing_startup_settings.lifespan"

from collections.abc import AsyncIterator  # noqa: E402
from contextlib import asynccontextmanager  # noqa: E402
from typing import Any  # noqa: E402


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    raise ConnectionError("database at db.internal:5432 refused the connection")
    yield
