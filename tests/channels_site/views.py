"""Views and a websocket consumer for the Channels site."""

from __future__ import annotations

import json
import threading
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import HttpRequest, HttpResponse, JsonResponse


def page(request: HttpRequest) -> HttpResponse:
    """A compressible sync page: GZip rewrites its Content-Length; runs on a worker thread."""
    body = "<p>" + "hello from Django inside a ProtocolTypeRouter " * 200 + "</p>"
    response = HttpResponse(body, content_type="text/html")
    response["X-Thread"] = threading.current_thread().name
    return response


async def who(request: HttpRequest) -> JsonResponse:
    auth = request.scope.get("auth")
    return JsonResponse({"identity": getattr(auth, "identity", None)})


async def state(request: HttpRequest) -> JsonResponse:
    return JsonResponse(dict(request.scope.get("state") or {}))


class EchoConsumer(AsyncWebsocketConsumer):
    """Says who the stack made the user, then echoes."""

    async def connect(self) -> None:
        await self.accept()
        user = self.scope.get("user")
        name = None
        if user is not None:
            resolved: Any = await user.aresolve()
            name = resolved.get_username() if resolved.is_authenticated else ""
        auth = self.scope.get("auth")
        await self.send(json.dumps({"user": name, "identity": getattr(auth, "identity", None)}))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(f"echo {text_data}")
