"""pytest plugin (entry point ``pytest11``): fixtures for testing through the stack.

Loaded wherever django-middleware-stack is installed, so it imports nothing from Django
until a fixture is used (pytest-django configures settings after plugins load).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import pytest

try:  # an async fixture needs pytest-asyncio's decorator in its strict mode
    from pytest_asyncio import fixture as async_fixture
except ImportError:  # pragma: no cover - pytest-asyncio is what runs async tests here
    async_fixture = pytest.fixture  # type: ignore[assignment]

if TYPE_CHECKING:
    from middleware_stack.test import AsyncClient, Client, Websocket


@pytest.fixture
def stack_client() -> Client:
    """A :class:`middleware_stack.test.Client`: Django's ``Client`` through the stack."""
    from middleware_stack.test import Client

    return Client()


@pytest.fixture
def async_stack_client() -> AsyncClient:
    """A :class:`middleware_stack.test.AsyncClient`: ``AsyncClient`` through the stack."""
    from middleware_stack.test import AsyncClient

    return AsyncClient()


@async_fixture
async def stack_websocket() -> AsyncIterator[Callable[..., Websocket]]:
    """A factory of websocket connections through the stack; any left open are closed
    (and their app's errors raised) when the test ends::

        async def test_echo(stack_websocket):
            ws = stack_websocket("/ws/echo/")
            assert (await ws.connect())[0]
    """
    from middleware_stack.test import Websocket

    opened: list[Websocket] = []

    def connect(path: str, **kwargs: Any) -> Websocket:
        ws = Websocket(path, **kwargs)
        opened.append(ws)
        return ws

    yield connect
    for ws in opened:
        await ws.close()
