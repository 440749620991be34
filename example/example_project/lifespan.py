"""Startup and shutdown work for the example; the yielded dict becomes scope["state"]."""

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
    yield {"started_at": time.time()}
