"""Runtime checks between layers (``checks="warn"`` / ``"strict"``).

Placeholder until the runtime-checks issue lands: the builder already calls
``wrapper(mode, blocking_ms)`` and wraps every layer and the app with the result.
"""

from __future__ import annotations

from typing import Any

from middleware_stack.types import ASGIApp

__all__ = ["Guard", "wrapper"]


class Guard:
    def __init__(self, mode: str, blocking_ms: float) -> None:
        self.mode = mode
        self.blocking_ms = blocking_ms

    def __call__(self, app: ASGIApp, index: int | None, path: str) -> ASGIApp:
        return app

    def report(self) -> dict[str, Any]:
        return {}


def wrapper(mode: str, blocking_ms: float) -> Guard:
    return Guard(mode, blocking_ms)
