"""Django MIDDLEWARE of every style, to be refused in ASGI_MIDDLEWARE (test_django_middleware)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.utils.decorators import sync_and_async_middleware
from django.utils.deprecation import MiddlewareMixin


class MixinMiddleware(MiddlewareMixin):
    def process_request(self, request: Any) -> None:
        return None


class PlainGetResponse:
    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        return self.get_response(request)


def function_middleware(get_response: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def middleware(request: Any) -> Any:
        return get_response(request)

    return middleware


@sync_and_async_middleware
def marked_middleware(handler: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return handler
