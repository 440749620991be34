"""``ASGI_LIFESPAN`` under servers that send no lifespan (daphne): run it at the first request.

daphne, the server in Django's docs and behind Channels' ``runserver``, implements no
lifespan protocol, so the user's start-up code would never run, and views reading
``scope["state"]`` would fail, with nothing said. When the first request arrives and no
lifespan scope has reached the stack, the fallback runs the start-up then: once, under a
lock, concurrent first requests waiting on it. It logs a warning that names the server,
and registers the shut-down to run at interpreter exit, bounded in time.

``ASGI_LIFESPAN_FALLBACK = False`` turns it off. A server that sends lifespan never
reaches this code: the boundary drops the fallback on the first lifespan scope.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
from contextlib import AbstractAsyncContextManager
from typing import Any

from middleware_stack.types import Scope

__all__ = ["SHUTDOWN_TIMEOUT", "LifespanFallback", "server_name"]

logger = logging.getLogger("middleware_stack")

#: Seconds the shut-down half may take at interpreter exit before it is abandoned.
SHUTDOWN_TIMEOUT = 10.0

#: Servers known to send no lifespan, by the module that is loaded when they run.
_NO_LIFESPAN_SERVERS = (("daphne.server", "daphne"),)


def server_name(scope: Scope) -> str:
    """The server, as far as the scope and the loaded modules tell."""
    name = next((label for mod, label in _NO_LIFESPAN_SERVERS if mod in sys.modules), None)
    parts = [name or "the server"]
    asgi = scope.get("asgi")
    if isinstance(asgi, dict) and asgi.get("version"):
        parts.append(f"ASGI {asgi['version']}")
    server = scope.get("server")
    if isinstance(server, list | tuple) and len(server) == 2:
        parts.append(f"on {server[0]}:{server[1]}")
    return parts[0] + (f" ({', '.join(parts[1:])})" if len(parts) > 1 else "")


class LifespanFallback:
    """The start-up half of ``ASGI_LIFESPAN`` at the first request, the shut-down at exit."""

    def __init__(self, lifespan: Any, owner: Any, state: dict[str, Any]) -> None:
        self.lifespan = lifespan
        self.owner = owner  # the Stack, passed to lifespan(app)
        self.state = state  # the boundary's state dict, filled in place
        self.lock = asyncio.Lock()
        self.done = False
        self.task: asyncio.Future[None] | None = None
        self.failed: str | None = None
        self.context: AbstractAsyncContextManager[Any] | None = None

    async def run(self, scope: Scope) -> None:
        """Run start-up once; every caller returns after it finished (or raises its failure)."""
        if not self.done:
            async with self.lock:
                if not self.done:
                    if self.task is None:
                        self.task = asyncio.ensure_future(self._startup(scope))
                    # Shielded: a first request cancelled (client gone) leaves start-up
                    # running for the next waiter, never half-entered.
                    await asyncio.shield(self.task)
        if self.failed is not None:
            raise RuntimeError(
                f"ASGI_LIFESPAN start-up failed (run at the first request, as the server sent "
                f"no lifespan): {self.failed}"
            )

    async def _startup(self, scope: Scope) -> None:
        logger.warning(
            "ASGI lifespan: %s sent no lifespan before the first request, so ASGI_LIFESPAN "
            "(%s) runs now, once, and its shut-down at interpreter exit. Set "
            "ASGI_LIFESPAN_FALLBACK = False to turn this off.",
            server_name(scope),
            getattr(self.lifespan, "__qualname__", None) or repr(self.lifespan),
        )
        try:
            self.context = self.lifespan(self.owner)
            state = await self.context.__aenter__()
            if state:
                self.state.update(state)
        except Exception as exc:
            logger.error("ASGI lifespan startup failed (first-request fallback)", exc_info=True)
            self.failed = f"{type(exc).__name__}: {exc}"
            self.context = None
        else:
            atexit.register(self.shutdown)
        finally:
            self.done = True

    def shutdown(self, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """The shut-down half, on a fresh event loop (the server's is gone), at most ``timeout``."""
        context, self.context = self.context, None
        if context is None:
            return
        atexit.unregister(self.shutdown)

        async def leave() -> None:
            await asyncio.wait_for(context.__aexit__(None, None, None), timeout)

        try:
            asyncio.run(leave())
        except asyncio.TimeoutError:
            logger.error("ASGI lifespan shutdown (fallback) did not finish in %ss", timeout)
        except Exception:
            logger.error("ASGI lifespan shutdown failed (fallback)", exc_info=True)
        else:
            logger.info("ASGI lifespan shutdown (fallback) complete")
