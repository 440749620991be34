"""Test through the stack: Django's test clients, with requests that cross the ASGI layers.

``Client`` and ``AsyncClient`` are drop-in subclasses of Django's; ``Websocket`` opens
a websocket through the same stack. The pytest plugin (:mod:`middleware_stack.test.plugin`,
registered as an entry point) adds the fixtures ``stack_client``, ``async_stack_client``
and ``stack_websocket``. See the "Testing your stack" page of the documentation.

The names are imported on first use: pytest loads the plugin, and so this package, in
every session, before pytest-django has configured Django.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from middleware_stack.test.client import AsyncClient, Client
    from middleware_stack.test.websocket import Websocket, WebsocketClosed

__all__ = ["AsyncClient", "Client", "Websocket", "WebsocketClosed"]


def __getattr__(name: str) -> Any:
    if name in ("AsyncClient", "Client"):
        from middleware_stack.test import client

        return getattr(client, name)
    if name in ("Websocket", "WebsocketClosed"):
        from middleware_stack.test import websocket

        return getattr(websocket, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
