"""Test through the stack: Django's test clients, with requests that cross the ASGI layers.

``Client`` and ``AsyncClient`` are drop-in subclasses of Django's; ``Websocket`` opens
a websocket through the same stack. The pytest plugin (:mod:`middleware_stack.test.plugin`,
registered as an entry point) adds the fixtures ``stack_client``, ``async_stack_client``
and ``stack_websocket``. See the "Testing your stack" page of the documentation.
"""

from middleware_stack.test.client import AsyncClient, Client
from middleware_stack.test.websocket import Websocket, WebsocketClosed

__all__ = ["AsyncClient", "Client", "Websocket", "WebsocketClosed"]
