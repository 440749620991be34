"""An ASGI_LIFESPAN that leaves a trace in a file, for the daphne fallback test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any


def _note(event: str) -> None:
    with open(os.environ["LIFESPAN_LOG"], "a") as f:
        f.write(f"{event} {os.getpid()}\n")


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
    _note("startup")
    yield {"started_by": "lifespan"}
    _note("shutdown")
