"""The common Channels layout: Django for HTTP, a URLRouter of consumers for websockets."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.channels_site.settings")

from django.core.asgi import get_asgi_application

django_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from middleware_stack import build_stack  # noqa: E402
from tests.channels_site.views import EchoConsumer  # noqa: E402

router = ProtocolTypeRouter(
    {
        "http": django_app,
        "websocket": URLRouter([path("ws/echo/", EchoConsumer.as_asgi())]),
    }
)
application = build_stack(router)
