"""AppConfig: adding "middleware_stack" to INSTALLED_APPS registers the system checks."""

from __future__ import annotations

from django.apps import AppConfig


class MiddlewareStackConfig(AppConfig):
    name = "middleware_stack"
    verbose_name = "ASGI middleware stack"

    def ready(self) -> None:
        from middleware_stack import checks, devserver  # noqa: F401  (registers the checks)

        devserver.fill_asgi_application()
